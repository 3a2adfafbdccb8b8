"""Load test of the HTTP service: a real `toeangle serve` on 127.0.0.1, real photos, concurrent clients.

    python bench/load.py [--workers 2] [--clients 4] [--seconds 20] [--overload 4]

1. Measures the CPU time of one photo in this process (decode + detect + assess, warm), and
   from it the throughput the worker count allows: min(workers, cores) / CPU seconds per photo.
2. Starts the server (TOEANGLE_WORKERS=--workers) on a free loopback port and waits for /readyz.
3. Saturation: --clients closed-loop clients post photos for --seconds; prints throughput, its
   ratio to the CPU bound, p50/p95/p99 latency, errors, and the peak RSS of the server and its
   worker processes together.
4. Overload: an open-loop arrival rate of --overload times the measured throughput for
   --seconds; counts 200s, 503s (with Retry-After), client timeouts and anything else.

Photos come from $TOEANGLE_SHARED_DIR/real-photos (default ../shared/real-photos), as in the
tests. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOEANGLE_SHARED_DIR", REPO.parent / "shared"))


BOUNDARY = "toeangle-load-boundary"


def photos() -> list[tuple[str, bytes]]:
    paths = sorted((SHARED / "real-photos").glob("*/rgb_*.png"))
    if not paths:
        sys.exit(f"no photos under {SHARED}/real-photos (set TOEANGLE_SHARED_DIR)")
    return [(p.name, p.read_bytes()) for p in paths]


def form_body(photo: bytes) -> bytes:
    """The multipart body, encoded once per photo so that the load generator stays cheap."""
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"photo.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + photo + f"\r\n--{BOUNDARY}--\r\n".encode()


def cpu_per_photo(data: list[tuple[str, bytes]], rounds: int = 3) -> float:
    """CPU seconds per photo in one warm Measurer, single-threaded like a worker."""
    import cv2

    from toeangle.pipeline import Measurer

    cv2.setNumThreads(1)
    measurer = Measurer()
    for _, photo in data:  # warm up
        measurer.measure_photo(photo)
    started = time.process_time()
    for _ in range(rounds):
        for _, photo in data:
            measurer.measure_photo(photo)
    return (time.process_time() - started) / (rounds * len(data))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workers: int, queue_size: int | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TOEANGLE_WORKERS": str(workers), "TOEANGLE_PORT": str(self.port),
               "TOEANGLE_HOST": "127.0.0.1", "TOEANGLE_LOG_LEVEL": "warning"}
        if queue_size is not None:
            env["TOEANGLE_QUEUE_SIZE"] = str(queue_size)
        self.proc = subprocess.Popen([sys.executable, "-m", "toeangle.cli", "serve"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            sys.exit("server not ready in 120 s")
        self.ready = httpx.get(self.url + "/readyz").json()
        threading.Thread(target=self._sample, daemon=True).start()

    def processes(self) -> list[psutil.Process]:
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        total = 0
        for p in self.processes():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.rss())
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def post(client: httpx.AsyncClient, bodies: list[bytes], i: int, results: list, timeout: float) -> None:
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(client.post(
            "/v1/measurements", content=bodies[i % len(bodies)],
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}, timeout=timeout), timeout)
        kind = str(response.status_code)
        if response.status_code == 503 and not response.headers.get("retry-after"):
            kind = "503-without-retry-after"
    except (TimeoutError, httpx.TimeoutException):
        kind = "timeout"
    except httpx.TransportError as exc:
        kind = type(exc).__name__
    results.append((kind, time.perf_counter() - started, started))


async def closed_loop(url: str, bodies, clients: int, seconds: float) -> tuple[list, float]:
    results: list = []
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        stop_at = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def one_client():
            while time.perf_counter() < stop_at:
                await post(client, bodies, next(counter), results, timeout=30)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return results, time.perf_counter() - started


async def open_loop(url: str, bodies, rate: float, seconds: float, timeout: float) -> tuple[list, float]:
    results: list = []
    limits = httpx.Limits(max_connections=2000)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        tasks = []
        started = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(client, bodies, i, results, timeout)))
        await asyncio.gather(*tasks)
        return results, time.perf_counter() - started


def summarise(results: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, _, _ in results:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue-size", type=int, default=None, help="default: TOEANGLE_QUEUE_SIZE (8)")
    parser.add_argument("--clients", type=int, default=None, help="closed-loop clients (default: 2 x workers)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--overload", type=float, default=4, help="offered load in the overload phase, x throughput")
    parser.add_argument("--timeout", type=float, default=10, help="client timeout in the overload phase (s)")
    args = parser.parse_args()
    clients = args.clients or 2 * args.workers
    data = photos()
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.2f} (other work on the machine shares them)")
    print(f"photos: {len(data)} real photos from {SHARED / 'real-photos'}, "
          f"{statistics.mean(len(p) for _, p in data) / 1e3:.0f} kB mean")

    cpu = cpu_per_photo(data)
    bound = min(args.workers, cores) / cpu
    print(f"single photo: {cpu * 1e3:.1f} ms CPU (decode + detect + assess, in-process, warm)")
    print(f"CPU bound: {min(args.workers, cores)} busy cores / {cpu * 1e3:.1f} ms = {bound:.1f} photos/s")

    bodies = [form_body(photo) for _, photo in data]
    me = psutil.Process()
    server = Server(args.workers, args.queue_size)
    print(f"server: {server.url}, ready: {server.ready}")
    try:
        cpu_before, client_before, machine_before = server.cpu_seconds(), me.cpu_times(), psutil.cpu_times()
        results, wall = asyncio.run(closed_loop(server.url, bodies, clients, args.seconds))
        server_cpu = server.cpu_seconds() - cpu_before
        client_cpu = sum(me.cpu_times()[:2]) - sum(client_before[:2])
        machine_cpu = (sum(psutil.cpu_times()[:3]) - sum(machine_before[:3]))
        ok = [lat for kind, lat, _ in results if kind == "200"]
        counts = summarise(results)
        throughput = len(ok) / wall
        errors = len(results) - len(ok)
        print(f"\n== saturation: {clients} closed-loop clients for {wall:.1f} s ==")
        print(f"requests: {len(results)}  answers: {counts}")
        print(f"throughput: {throughput:.1f} photos/s = {throughput / bound:.0%} of the CPU bound ({bound:.1f}/s)")
        print(f"latency (200s): p50 {pct(ok, 50) * 1e3:.0f} ms, p95 {pct(ok, 95) * 1e3:.0f} ms, "
              f"p99 {pct(ok, 99) * 1e3:.0f} ms, max {max(ok) * 1e3:.0f} ms")
        print(f"errors: {errors}")
        print(f"server CPU per request (service + workers, HTTP included): {server_cpu / max(1, len(results)) * 1e3:.1f} ms")
        print(f"CPU used in the phase (core-seconds): server {server_cpu:.1f}, load generator {client_cpu:.1f}, "
              f"everything else on the machine {max(0.0, machine_cpu - server_cpu - client_cpu):.1f}, "
              f"of {cores * wall:.1f} available")
        print(f"peak RSS (server + workers): {server.peak_rss / 2**20:.0f} MiB")

        rate = args.overload * throughput
        cpu_before, client_before, machine_before = server.cpu_seconds(), me.cpu_times(), psutil.cpu_times()
        results, wall = asyncio.run(open_loop(server.url, bodies, rate, args.seconds, args.timeout))
        server_cpu = server.cpu_seconds() - cpu_before
        client_cpu = sum(me.cpu_times()[:2]) - sum(client_before[:2])
        machine_cpu = (sum(psutil.cpu_times()[:3]) - sum(machine_before[:3]))
        counts = summarise(results)
        ok = [lat for kind, lat, _ in results if kind == "200"]
        refused = [lat for kind, lat, _ in results if kind == "503"]
        print(f"\n== overload: {args.overload:g}x = {rate:.1f} requests/s offered (open loop) for {args.seconds:g} s ==")
        print(f"requests: {len(results)} in {wall:.1f} s  answers: {counts}")
        print(f"served: {len(ok)} ({len(ok) / wall:.1f}/s), latency p50 {pct(ok, 50) * 1e3:.0f} ms, "
              f"p99 {pct(ok, 99) * 1e3:.0f} ms")
        print(f"refused with 503 + Retry-After: {len(refused)}, latency p50 {pct(refused, 50) * 1e3:.0f} ms, "
              f"p99 {pct(refused, 99) * 1e3:.0f} ms")
        print(f"client timeouts ({args.timeout:g} s): {counts.get('timeout', 0)}; "
              f"other: {sum(v for k, v in counts.items() if k not in ('200', '503', 'timeout'))}")
        print(f"CPU used in the phase (core-seconds): server {server_cpu:.1f}, load generator {client_cpu:.1f}, "
              f"everything else on the machine {max(0.0, machine_cpu - server_cpu - client_cpu):.1f}, "
              f"of {cores * wall:.1f} available")
        print(f"peak RSS (server + workers): {server.peak_rss / 2**20:.0f} MiB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
