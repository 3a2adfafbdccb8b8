"""Where the photos are scored: in this process, in a local process pool, or on a Dask cluster.

Every engine runs the same function (``score``) on the same pipeline as the single-photo
CLI, with one ``Measurer`` (detector models, rules) built once per worker process (per
worker thread on Dask), and yields rows as they finish. Submission is bounded: only a few
batches per worker are in flight, so a list of millions of paths never queues up at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from ..child_process import exit_with_parent
from ..decode import encode_png
from ..errors import ToeangleError
from ..overlay import draw_overlay
from ..pipeline import Measurer
from ..schema import MeasureOptions
from ..settings import Settings
from .discover import SNIFF_BYTES, FileRefused, Photo, is_clip, read_file
from .rows import Row


@dataclass(frozen=True)
class Job:
    """What every worker needs besides the photos: small, picklable, shipped once per batch."""

    options: MeasureOptions = field(default_factory=MeasureOptions)
    clip_options: MeasureOptions = field(default_factory=lambda: MeasureOptions(protocol="heel_raise"))
    """What clips are measured for (the heel raise, or walking/running): photos and clips show different things."""
    settings: tuple[tuple[str, object], ...] = ()
    """Settings overrides (e.g. detector); everything else comes from the worker's TOEANGLE_* environment."""
    overlays: str | None = None
    """Folder for overlay PNGs (absolute; on a cluster it must be shared by the workers)."""
    overlay_root: str | None = None
    """Photo paths are mirrored under ``overlays`` relative to this folder (the inputs' common root)."""

    def measurer(self) -> Measurer:
        return Measurer(Settings(**dict(self.settings)))


def overlay_path(folder: str, photo_path: str, root: str | None = None) -> Path:
    """Where a photo's overlay goes: its path relative to ``root`` mirrored under ``folder``, plus ``.png``."""
    path = os.path.abspath(photo_path)
    if root is not None:
        rel = os.path.relpath(path, root)
        path = path if rel.startswith("..") else rel
    drive, rest = os.path.splitdrive(os.path.normpath(path))
    parts = [("_up_" if part == ".." else part) for part in Path(rest).parts if part not in (os.sep, "/", "\\")]
    return Path(folder, *parts[:-1], parts[-1] + ".png")


def score(measurer: Measurer, job: Job, photo: Photo) -> Row:
    """One photo -> one row; never raises for a bad photo (the error goes into the row)."""
    protocol = job.options.protocol
    if photo.problem:
        return Row.failed(photo.path, photo.size, photo.mtime_ns, protocol, photo.problem)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        data = read_file(photo.read_from or photo.path, measurer.settings.batch_max_file_bytes)
    except FileRefused as exc:
        return Row.failed(photo.path, photo.size, photo.mtime_ns, protocol, str(exc))
    if not data:
        return Row.failed(photo.path, photo.size, photo.mtime_ns, protocol, "empty file")
    clip = is_clip(data[:SNIFF_BYTES])
    protocol = job.clip_options.protocol if clip else protocol
    try:
        if clip:
            return _score_clip(measurer, job, photo, data, started, cpu)
        outcome = measurer.measure_photo(data, job.options)
    except ToeangleError as exc:
        return Row.failed(photo.path, photo.size, photo.mtime_ns, protocol, f"{type(exc).__name__}: {exc}",
                          ms=(time.perf_counter() - started) * 1e3,
                          cpu_ms=(time.process_time() - cpu) * 1e3)
    except Exception as exc:  # a bug, reported in the row: one photo must not stop a run of a million
        return Row.failed(photo.path, photo.size, photo.mtime_ns, protocol,
                          f"internal error {type(exc).__name__}: {exc}", ms=(time.perf_counter() - started) * 1e3,
                          cpu_ms=(time.process_time() - cpu) * 1e3)
    if job.overlays:
        target = overlay_path(job.overlays, photo.path, job.overlay_root)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encode_png(draw_overlay(outcome.image, outcome.result)))
        except OSError:
            pass  # the measurement stands; a full disk shows in the overlay folder, not as a lost row
    return Row.from_result(photo.path, photo.size, photo.mtime_ns, outcome.result,
                           ms=(time.perf_counter() - started) * 1e3, cpu_ms=(time.process_time() - cpu) * 1e3)


def _score_clip(measurer: Measurer, job: Job, photo: Photo, data: bytes, started: float, cpu: float) -> Row:
    """One clip -> one row (the movement's angle); with --overlays, its key frame (PNG) and curve (SVG)."""
    from ..video.annotate import key_frame
    from ..video.pipeline import VideoMeasurer
    from ..video.plot import plot_svg

    videos = VideoMeasurer(measurer)
    result = videos.measure_clip(data, job.clip_options)
    if job.overlays:
        target = overlay_path(job.overlays, photo.path, job.overlay_root)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encode_png(draw_overlay(*key_frame(data, result, videos.limits))))
            target.with_suffix(".svg").write_text(plot_svg(result))
        except OSError:
            pass  # as for photos: the row stands
    return Row.from_video(photo.path, photo.size, photo.mtime_ns, result, ms=(time.perf_counter() - started) * 1e3,
                          cpu_ms=(time.process_time() - cpu) * 1e3)


def _batches(photos: Iterable[Photo], size: int) -> Iterator[list[Photo]]:
    it = iter(photos)
    while batch := list(islice(it, size)):
        yield batch


# -- in this process --------------------------------------------------------------------

class InProcessEngine:
    """One worker: this process. Also what ``--workers 1`` uses (no pool, no copying)."""

    name = "inprocess"

    def __init__(self, job: Job, measurer: Measurer | None = None):
        self.job = job
        self.workers = 1
        self.measurer = measurer

    def run(self, photos: Iterable[Photo], total: int | None = None) -> Iterator[Row]:
        measurer = self.measurer or self.job.measurer()
        for photo in photos:
            yield score(measurer, self.job, photo)


# -- local process pool ------------------------------------------------------------------

_WORKER: tuple[Measurer, Job] | None = None


def _init_worker(job: Job) -> None:
    """Pool initializer: the models are loaded here, once per worker process."""
    global _WORKER
    exit_with_parent()  # a batch killed with -9 must not leave its workers (and their models) behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the pool
    try:
        import cv2
        cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe
    except Exception:  # pragma: no cover
        pass
    _WORKER = (job.measurer(), job)


def _score_batch(photos: list[Photo]) -> list[Row]:
    assert _WORKER is not None, "worker not initialised"
    measurer, job = _WORKER
    return [score(measurer, job, photo) for photo in photos]


def _context() -> multiprocessing.context.BaseContext:
    """forkserver on Linux: workers forked from a clean server, never from this (threaded) process."""
    if sys.platform.startswith("linux"):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["toeangle.batch.engines"])
        return ctx
    return multiprocessing.get_context("spawn")


def batch_size(total: int | None, workers: int, largest: int = 16) -> int:
    """Photos per task: large enough to hide the hand-over cost, small enough to keep every worker busy."""
    if not total:
        return 4
    return max(1, min(largest, total // (workers * 8)))


class LocalEngine:
    """A process pool on this machine, one Measurer per worker process.

    If a worker dies (a native crash on some file), the pool is restarted and the photos
    that were in flight are retried one at a time; one that kills a worker again becomes
    an error row.
    """

    name = "local"

    def __init__(self, job: Job, workers: int):
        self.job = job
        self.workers = workers

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_init_worker,
                                   initargs=(self.job,))

    def run(self, photos: Iterable[Photo], total: int | None = None) -> Iterator[Row]:
        size = batch_size(total, self.workers)
        pending = _batches(photos, size)
        suspects: list[Photo] = []
        pool = self._pool()
        inflight: dict[Future, list[Photo]] = {}
        try:
            while True:
                while len(inflight) < self.workers * 2:
                    batch = next(pending, None)
                    if batch is None:
                        break
                    inflight[pool.submit(_score_batch, batch)] = batch
                if not inflight:
                    break
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    batch = inflight.pop(future)
                    try:
                        yield from future.result()
                    except BrokenProcessPool:
                        broken = True
                        suspects.extend(batch)
                    except Exception:  # the batch failed as a whole (its rows could not come back): one by one
                        yield from self._retry_alone(batch)
                if broken:
                    for batch in inflight.values():
                        suspects.extend(batch)
                    inflight.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    yield from self._retry_alone(suspects)
                    suspects = []
                    pool = self._pool()
            pool.shutdown(wait=True)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C or the consumer stopped: do not wait

    def _retry_alone(self, photos: Sequence[Photo]) -> Iterator[Row]:
        for photo in photos:
            with ProcessPoolExecutor(1, mp_context=_context(), initializer=_init_worker,
                                     initargs=(self.job,)) as pool:
                try:
                    yield from pool.submit(_score_batch, [photo]).result()
                except BrokenProcessPool:
                    yield Row.failed(photo.path, photo.size, photo.mtime_ns, self.job.options.protocol,
                                     "the worker process died while scoring this photo")
                except Exception as exc:
                    yield Row.failed(photo.path, photo.size, photo.mtime_ns, self.job.options.protocol,
                                     f"the worker failed on this photo: {type(exc).__name__}: {exc}")


# -- Dask --------------------------------------------------------------------------------

_DASK_LOCAL = threading.local()
WAIT_FOR_WORKERS_S = 120
"""How long a run waits for the cluster's first worker before giving up."""
RECOUNT_WORKERS_S = 5.0
"""How often the number of worker threads (and so the batches kept in flight) is checked again."""


def dask_score_batch(job: Job, photos: list[Photo]) -> list[Row]:
    """Runs on a Dask worker: the Measurer is built on first use and kept for the worker thread's life."""
    cache = getattr(_DASK_LOCAL, "measurers", None)
    if cache is None:
        cache = _DASK_LOCAL.measurers = {}
    measurer = cache.get(job.settings)
    if measurer is None:
        measurer = cache[job.settings] = job.measurer()
    return [score(measurer, job, photo) for photo in photos]


class DaskEngine:
    """The same work on a ``dask.distributed`` cluster; results stream back to this process's writer.

    Workers read the photos themselves, from absolute paths that must exist on them too
    (a shared mount). Without a scheduler address a LocalCluster with ``workers`` processes
    is started for the run.
    """

    name = "dask"

    def __init__(self, job: Job, scheduler: str | None, workers: int, batch: int | None = None):
        self.job = job
        self.scheduler = scheduler
        self.workers = workers
        self.batch = batch

    def run(self, photos: Iterable[Photo], total: int | None = None) -> Iterator[Row]:
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError:  # pragma: no cover - depends on the install
            raise RuntimeError("the dask engine needs the cluster extra: pip install 'toeangle[cluster]'") from None
        cluster = None
        if self.scheduler:
            client = Client(self.scheduler, timeout="30s")
        else:
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        inflight: dict[object, list[Photo]] = {}
        try:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            threads = self.workers = max(1, sum(client.nthreads().values()))
            size = self.batch or batch_size(total, threads)
            remote = ([Photo(p.path, p.size, p.mtime_ns, p.problem, os.path.abspath(p.read_from or p.path))
                       for p in batch] for batch in _batches(photos, size))
            job = self.job
            queue = as_completed()
            checked = time.monotonic()

            def top_up() -> None:
                while len(inflight) < 2 * threads:
                    batch = next(remote, None)
                    if batch is None:
                        return
                    future = client.submit(dask_score_batch, job, batch, pure=False)
                    inflight[future] = batch
                    queue.add(future)

            top_up()
            for future in queue:
                batch = inflight.pop(future)
                try:
                    rows = future.result()
                except Exception as exc:  # the task itself failed (a worker died, a lost connection)
                    rows = [Row.failed(p.path, p.size, p.mtime_ns, job.options.protocol,
                                       f"dask task failed: {type(exc).__name__}: {exc}") for p in batch]
                yield from rows
                if time.monotonic() - checked > RECOUNT_WORKERS_S:  # workers may join (or leave) mid-run
                    threads = self.workers = max(1, sum(client.nthreads().values()))
                    checked = time.monotonic()
                top_up()
        finally:
            try:
                if inflight:
                    client.cancel(list(inflight))
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
