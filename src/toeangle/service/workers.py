"""A bounded pool of worker processes, each holding one Measurer (models loaded once per worker),
that heals itself: a worker that dies is replaced, whatever the sequence of crashes.

Why processes: inference is CPU-bound (the GIL would serialise threads) and MediaPipe
objects must not be shared across threads, so every worker process builds its own
Measurer and keeps it for its life.

Why not ProcessPoolExecutor: one dead worker breaks the whole executor, failing every job
of every worker, and restarting it while a restart is under way left the pool dead. Here
each worker has its own slot: a thread in the service process that starts the worker, feeds
it jobs from the shared queue one at a time, and starts a new one when it dies. A crash
costs only the job that was on that worker; queued jobs wait for the next free worker.
A worker that cannot start (an error building its Measurer, or every start failing for
GIVE_UP_AFTER_S) makes the pool ``broken``: /healthz then fails so that an orchestrator
restarts the service.

Admission is bounded: at most ``workers + queue_size`` requests are running or waiting;
one more is refused at once (``Overloaded``, a 503 with Retry-After) instead of queueing
without limit. A slot is given back when the worker has really finished the job, not
when the client stopped waiting, so a timed-out request still counts until its worker is
free again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import wait

import numpy as np

from ..child_process import exit_with_parent
from ..decode import encode_png
from ..overlay import draw_overlay
from ..schema import Landmarks, MeasurementResult, MeasureOptions, VideoResult
from ..settings import Settings

log = logging.getLogger("toeangle.service")

START_TIMEOUT_S = 180.0
"""A worker that has not built its Measurer and measured once in this time is a failed start."""
RESTART_BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 5.0)
"""Pause before each new start after failed ones (the last repeats)."""
STUCK_AFTER_S = 60.0
"""A job still running after this long (or three request time limits, if longer) has a stuck worker:
it is killed and replaced."""
GIVE_UP_AFTER_S = 300.0
"""A worker slot whose starts have all failed for this long gives up: the pool is broken. (Starts
killed from outside are retried until then; an error building the Measurer gives up at once.)"""


class Overloaded(Exception):
    """Every worker is busy and the queue is full."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"every worker is busy and the queue is full; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class TimedOut(Exception):
    """The request's time limit passed before its worker answered."""


class NotReady(Exception):
    """The worker pool cannot take the job (it cannot start its workers, or it is stopping)."""


class WorkerCrashed(NotReady):
    """The worker measuring this job died (a native crash, out of memory, killed)."""


@dataclass(frozen=True)
class WorkerAnswer:
    result: MeasurementResult
    overlay_png: bytes | None
    worker_pid: int
    cpu_ms: float


@dataclass(frozen=True)
class VideoAnswer:
    result: VideoResult
    plot_svg: str | None
    key_frame_png: bytes | None
    worker_pid: int
    cpu_ms: float


# ---- inside each worker process ------------------------------------------------------

WORKER_NICE = 5
"""Workers run at a lower CPU priority than the service process that admits and answers."""


def _worker_main(conn, settings: Settings) -> None:
    """A worker's life: build the Measurer, measure once, say ready, then answer jobs until told to stop."""
    exit_with_parent()
    try:
        import cv2

        cv2.setNumThreads(1)  # the pool provides the parallelism; N workers x M threads oversubscribes
        os.nice(WORKER_NICE)  # the event loop (admission, 503s, health) must never wait behind inference
        from ..pipeline import Measurer

        measurer = Measurer(settings)
        # one real measurement on a synthetic picture, so the first user does not pay for lazy loading
        measurer.measure_photo(encode_png(np.full((480, 640, 3), 128, np.uint8)))
    except Exception as exc:  # a missing model, a bad rules file: no restart will fix it
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the service is gone
            return
        if job is None:
            return
        kind, data, options, points, pictures = job
        started = time.process_time()
        try:
            if kind == "video":
                reply = ("ok", _measure_clip(measurer, data, options, points, pictures, started))
            else:
                outcome = measurer.measure_photo(data, options, points=points)
                png = encode_png(draw_overlay(outcome.image, outcome.result)) if pictures else None
                reply = ("ok", WorkerAnswer(outcome.result, png, os.getpid(), (time.process_time() - started) * 1e3))
        except Exception as exc:
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}; ({exc})")))


def _measure_clip(measurer, data: bytes, options: MeasureOptions, points: Landmarks | None, pictures: bool,
                  started: float) -> VideoAnswer:
    """A clip, measured with the worker's Measurer (its models); the plot and the key frame when asked for."""
    from ..video.annotate import key_frame
    from ..video.pipeline import VideoMeasurer
    from ..video.plot import plot_svg

    videos = VideoMeasurer(measurer)
    result = videos.measure_clip(data, options, points)
    svg = png = None
    if pictures:
        svg = plot_svg(result, measurer.rules.protocols[options.protocol].normal_min_deg)
        png = encode_png(draw_overlay(*key_frame(data, result, videos.limits)))
    return VideoAnswer(result, svg, png, os.getpid(), (time.process_time() - started) * 1e3)


# ---- in the service process ----------------------------------------------------------

class Ticket:
    """One admitted measurement; released exactly once (by the worker's completion, or by the request)."""

    def __init__(self, pool: WorkerPool):
        self.pool = pool
        self.handed_to_worker = False
        self._released = False

    def release(self, seconds: float | None = None) -> None:
        if not self._released:
            self._released = True
            self.pool._release(seconds)


@dataclass
class _Job:
    args: tuple
    future: Future
    limit_s: float


class _Slot:
    """One worker process and the thread that feeds it; replaces the worker whenever it dies."""

    def __init__(self, pool: WorkerPool, index: int):
        self.pool, self.index = pool, index
        self.ready = False
        self.thread = threading.Thread(target=self._run, name=f"worker-slot-{index}", daemon=True)

    def _run(self) -> None:
        failures, failing_since = 0, time.monotonic()
        while not self.pool.stopping:
            time.sleep(RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)])
            try:
                process, conn = self._start()
            except Exception as exc:  # could not even spawn (no memory, no file descriptors)
                log.error("worker failed to start", extra={"worker": self.index, "error": repr(exc)})
                process, conn = None, None
            if process is None:
                if self.pool.broken:
                    return
                failures += 1
                if time.monotonic() - failing_since > GIVE_UP_AFTER_S:
                    self.pool._give_up(f"worker {self.index} failed to start {failures} times in "
                                       f"{GIVE_UP_AFTER_S:g} s: {self.pool.last_start_error}")
                    return
                continue
            failures = 0
            self.ready = True
            self.pool._changed()
            try:
                crashed = self._serve(process, conn)
            finally:
                self.ready = False
                conn.close()
            if crashed:
                self.pool._crashed(self.index, process)
            self.pool._changed()
            if not crashed:
                return
            failing_since = time.monotonic()

    def _start(self):
        """A new worker, warm; (None, None) when it died or failed on the way."""
        ctx = multiprocessing.get_context("spawn")  # never fork: the service process has threads
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=_worker_main, args=(theirs, self.pool.settings), name=f"toeangle-worker-{self.index}",
                              daemon=True)
        process.start()
        theirs.close()
        started = time.perf_counter()
        kind, detail = "died", f"no answer within {START_TIMEOUT_S:g} s"
        if wait([ours, process.sentinel], START_TIMEOUT_S):
            try:
                kind, detail = ours.recv()
            except (EOFError, OSError):  # it died (its pipe closes a moment before it can be reaped)
                process.join(1)
                kind, detail = "died", f"exit code {process.exitcode}"
        if kind == "ready":
            log.info("worker started", extra={"worker": self.index, "worker_pid": detail,
                                              "startup_s": round(time.perf_counter() - started, 2)})
            return process, ours
        _stop(process)
        ours.close()
        self.pool.last_start_error = detail
        log.error("worker failed to start", extra={"worker": self.index, "error": detail})
        if kind == "failed":  # an exception, not a crash: the same on every try
            self.pool._give_up(f"worker {self.index} could not start: {detail}")
        return None, None

    def _serve(self, process, conn) -> bool:
        """Feed jobs to the worker until told to stop (False) or the worker dies (True)."""
        while True:
            job = self.pool.jobs.get()
            if job is None:  # shutdown: every job queued before it has been taken
                try:
                    conn.send(None)
                except OSError:
                    pass
                _stop(process, grace_s=10)
                return False
            if not job.future.set_running_or_notify_cancel():  # timed out while queued
                continue
            try:
                conn.send(job.args)
                done = wait([conn, process.sentinel], max(STUCK_AFTER_S, 3 * job.limit_s))
                if not done:  # a native loop that never returns: only a new process frees the place
                    log.error("worker stuck; stopping it", extra={"worker": self.index, "worker_pid": process.pid})
                    process.kill()
                elif conn in done:
                    kind, value = conn.recv()
                    if kind == "ok":
                        job.future.set_result(value)
                    else:
                        job.future.set_exception(value)
                    continue
            except (EOFError, OSError):
                pass
            except Exception as exc:  # an answer that does not unpickle: that job's failure, not the worker's
                job.future.set_exception(RuntimeError(f"unreadable answer from the worker: {exc}"))
                continue
            job.future.set_exception(WorkerCrashed(
                "the worker measuring this photo stopped (a crash, or out of memory); another is starting"))
            _stop(process)
            return True


def _stop(process, grace_s: float = 0.0) -> None:
    process.join(grace_s)
    if process.is_alive():
        process.kill()
    process.join()


class WorkerPool:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.capacity = settings.workers + settings.queue_size
        self.in_flight = 0
        self.rejected = 0
        self.timed_out = 0
        self.crashes = 0
        self.error: str | None = None
        """Why the pool cannot heal (None while it can)."""
        self.last_start_error: str | None = None
        self.stopping = False
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._slots = [_Slot(self, i) for i in range(settings.workers)]
        self._service_s = 0.2  # running mean of a job's wall time, for Retry-After
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_ready: asyncio.Event | None = None

    # -- state, for /readyz, /healthz and the metrics --

    @property
    def workers_ready(self) -> int:
        return sum(slot.ready for slot in self._slots)

    @property
    def ready(self) -> bool:
        """Every worker is up and warm."""
        return self.workers_ready == len(self._slots) and not self.stopping

    @property
    def broken(self) -> bool:
        return self.error is not None

    # -- life --

    async def start(self) -> None:
        """Start the workers and wait until each has built its Measurer and measured once (or the pool broke)."""
        self._loop = asyncio.get_running_loop()
        self._all_ready = asyncio.Event()
        for slot in self._slots:
            slot.thread.start()
        await self._all_ready.wait()
        if self.broken:
            raise RuntimeError(self.error)

    def _changed(self) -> None:
        """Called from a slot thread when a worker came up or went down."""
        if self._loop is not None and (self.ready or self.broken):
            self._loop.call_soon_threadsafe(self._all_ready.set)

    def _crashed(self, index: int, process) -> None:
        self.crashes += 1
        log.error("worker died; starting another", extra={"worker": index, "worker_pid": process.pid,
                                                          "exit_code": process.exitcode, "crashes": self.crashes})

    def _give_up(self, why: str) -> None:
        self.error = why
        log.error("worker pool cannot heal", extra={"error": why})
        self._changed()
        while True:  # nobody will take the queued jobs: fail them now rather than at their time limit
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(NotReady(why))

    def shutdown(self) -> None:
        """Let running and queued jobs finish, then stop the workers."""
        self.stopping = True
        for _ in self._slots:
            self.jobs.put(None)
        for slot in self._slots:
            if slot.thread.is_alive():
                slot.thread.join(self.settings.request_timeout_s + 15)

    # -- admission and jobs --

    def admit(self) -> Ticket:
        """A place among the ``workers + queue_size`` measurements allowed at once, or Overloaded.

        Taken before the request body is read, so a refused photo costs almost nothing and the
        memory held by uploads is bounded as well; given back when the worker has finished.
        """
        if self.in_flight >= self.capacity:
            self.rejected += 1
            raise Overloaded(self.retry_after_s())
        self.in_flight += 1
        return Ticket(self)

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the queue ahead, drained by all workers."""
        return max(1, math.ceil(self._service_s * self.capacity / self.settings.workers))

    async def measure(self, ticket: Ticket, data: bytes, options: MeasureOptions, points: Landmarks | None = None,
                      overlay: bool = False) -> WorkerAnswer:
        """Measure a photo in a worker; the ticket (from admit) is given back when the worker is done with the job."""
        return await self._run(ticket, ("photo", data, options, points, overlay), self.settings.request_timeout_s)

    async def measure_video(self, ticket: Ticket, data: bytes, options: MeasureOptions,
                            points: Landmarks | None = None, pictures: bool = False) -> VideoAnswer:
        """Measure a clip in a worker, under the clips' own time limit (TOEANGLE_VIDEO_TIMEOUT_S)."""
        return await self._run(ticket, ("video", data, options, points, pictures), self.settings.video_timeout_s)

    async def _run(self, ticket: Ticket, args: tuple, limit_s: float):
        if self.broken or self.stopping:
            raise NotReady(self.error or "the service is stopping")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        job = _Job(args, Future(), limit_s)
        ticket.handed_to_worker = True

        def _finished(_: Future) -> None:
            try:
                loop.call_soon_threadsafe(ticket.release, time.perf_counter() - started)
            except RuntimeError:  # the loop has closed (shutdown)
                pass

        job.future.add_done_callback(_finished)
        self.jobs.put(job)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job.future), limit_s)
        except TimeoutError:
            # wait_for cancelled the job: that frees its place now if it was still queued; a running job
            # finishes first (a process cannot be interrupted safely) and then frees it.
            self.timed_out += 1
            raise TimedOut(f"no answer within {limit_s:g} s") from None

    def _release(self, seconds: float | None) -> None:
        self.in_flight -= 1
        if seconds is not None:
            self._service_s = 0.9 * self._service_s + 0.1 * seconds
