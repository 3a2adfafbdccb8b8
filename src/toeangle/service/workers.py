"""A bounded pool of worker processes, each holding one Measurer (models loaded once per worker).

Why processes: inference is CPU-bound (the GIL would serialise threads) and MediaPipe
objects must not be shared across threads, so every worker process builds its own
Measurer in the pool's initializer and keeps it for its life.

Admission is bounded: at most ``workers + queue_size`` requests are running or waiting;
one more is refused at once (``Overloaded``, a 503 with Retry-After) instead of queueing
without limit. A slot is given back when the worker has really finished the job, not
when the client stopped waiting, so a timed-out request still counts until its worker is
free again.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from ..decode import encode_png
from ..overlay import draw_overlay
from ..schema import Landmarks, MeasureOptions, MeasurementResult
from ..settings import Settings


class Overloaded(Exception):
    """Every worker is busy and the queue is full."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"every worker is busy and the queue is full; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class TimedOut(Exception):
    """The request's time limit passed before its worker answered."""


class NotReady(Exception):
    """The worker pool is not running (starting, restarting after a crash, or stopped)."""


@dataclass(frozen=True)
class WorkerAnswer:
    result: MeasurementResult
    overlay_png: bytes | None
    worker_pid: int
    cpu_ms: float


# ---- inside each worker process ------------------------------------------------------

WORKER_NICE = 5
"""Workers run at a lower CPU priority than the service process that admits and answers."""

_MEASURER = None


def _init_worker(settings: Settings) -> None:
    """Runs once in each new worker process: one thread per worker, one Measurer per worker."""
    global _MEASURER
    import cv2

    cv2.setNumThreads(1)  # the pool provides the parallelism; N workers x M threads oversubscribes
    os.nice(WORKER_NICE)  # the event loop (admission, 503s, health) must never wait behind inference
    from ..pipeline import Measurer

    _MEASURER = Measurer(settings)


def _measure(data: bytes, options: MeasureOptions, points: Landmarks | None, overlay: bool) -> WorkerAnswer:
    started = time.process_time()
    outcome = _MEASURER.measure_photo(data, options, points=points)
    png = encode_png(draw_overlay(outcome.image, outcome.result)) if overlay else None
    return WorkerAnswer(outcome.result, png, os.getpid(), (time.process_time() - started) * 1e3)


def _warm_up() -> int:
    """One real measurement on a synthetic picture, so the first user does not pay for lazy loading."""
    rgb = np.full((480, 640, 3), 128, np.uint8)
    _MEASURER.measure_photo(encode_png(rgb))
    time.sleep(0.2)  # hold this worker so the other warm-up jobs land on the others
    return os.getpid()


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


class WorkerPool:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.capacity = settings.workers + settings.queue_size
        self.in_flight = 0
        self.rejected = 0
        self.timed_out = 0
        self.ready = False
        self.error: str | None = None
        self._executor: ProcessPoolExecutor | None = None
        self._service_s = 0.2  # running mean of a job's wall time, for Retry-After
        self._lock = asyncio.Lock()

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the service process has threads (event loop, executor manager)
        return ProcessPoolExecutor(max_workers=self.settings.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.settings,))

    async def start(self) -> None:
        """Start the workers and wait until each has built its Measurer and measured once."""
        async with self._lock:
            self.ready = False
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            try:
                pids: set[int] = set()
                for _ in range(10):
                    jobs = [asyncio.wrap_future(self._executor.submit(_warm_up)) for _ in range(self.settings.workers)]
                    pids.update(await asyncio.gather(*jobs))
                    if len(pids) >= self.settings.workers:
                        break
            except Exception as exc:  # a worker that cannot build its Measurer (missing model, bad rules file)
                self.error = f"{type(exc).__name__}: {exc}"
                raise
            self.error = None
            self.ready = True

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
        """Measure in a worker; the ticket (from admit) is given back when the worker is done with the job."""
        if self._executor is None or (self.error is not None and not self.ready):
            raise NotReady(self.error or "the worker pool is not running")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            job: Future = self._executor.submit(_measure, data, options, points, overlay)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._restart_later(loop)
            raise NotReady(f"the worker pool is restarting: {exc}") from None
        ticket.handed_to_worker = True

        def _finished(_: Future) -> None:
            loop.call_soon_threadsafe(ticket.release, time.perf_counter() - started)

        job.add_done_callback(_finished)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job), self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            # wait_for cancelled the job: that frees its slot now if it was still queued; a running job
            # finishes first (a process cannot be interrupted safely) and then frees it.
            self.timed_out += 1
            raise TimedOut(f"no answer within {self.settings.request_timeout_s:g} s") from None
        except BrokenProcessPool as exc:  # a worker died (out of memory, a crash in native code)
            self._restart_later(loop)
            raise NotReady(f"a worker process died: {exc}") from None

    def _release(self, seconds: float | None) -> None:
        self.in_flight -= 1
        if seconds is not None:
            self._service_s = 0.9 * self._service_s + 0.1 * seconds

    def _restart_later(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.ready:
            self.ready = False
            self.error = "restarting after a worker crash"
            loop.create_task(self._restart())

    async def _restart(self) -> None:
        try:
            await self.start()
        except Exception:
            pass  # self.error says why; /readyz reports it

    def shutdown(self) -> None:
        """Let running and queued jobs finish, then stop the workers."""
        self.ready = False
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
