"""Issue 20, the service as a hostile user meets it: no lock-out, a pool that heals, clean logs.

One real `toeangle serve` (two workers, a queue of two, an API key and a 2 s body deadline) for
the module; the last test kills it with SIGKILL to see that its workers go too.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from conftest import stickers_at_angle
from PIL import Image
from service_server import launch_server, start_server

KEY = {"authorization": "Bearer hardened-key"}
BODY_TIMEOUT_S = 2
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("guarded"), "guarded", workers="2", queue_size="2",
                       api_keys="hardened-key", body_timeout_s=str(BODY_TIMEOUT_S))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def small_png() -> bytes:
    """A small real photo with skin markers on the foot, measured quickly: the load tests test the pool, not
    the model (stickers on a plain grey card are no longer taken for stickers)."""
    rgb, _ = stickers_at_angle(40.0, long_side=320)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def post_photo(url: str, data: bytes, headers=KEY, timeout: float = 30, client=httpx) -> httpx.Response:
    return client.post(url + "/v1/measurements", files={"photo": ("p.png", data, "image/png")}, headers=headers,
                       timeout=timeout)


def stalled_upload(url: str, key: bool, path: str = "/v1/measurements", declared: int = 100_000) -> socket.socket:
    """A client that sends the headers and a few bytes of the body, then nothing."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: multipart/form-data; boundary=b",
            f"Content-Length: {declared}"] + ([f"Authorization: {KEY['authorization']}"] if key else [])
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"--b\r\nContent-Disposition: form-data; name=")
    return sock


def response_of(sock: socket.socket) -> tuple[int, dict]:
    """The status and the JSON body of the answer on a raw socket (read until the server closes)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"{}")


def log_entries(server) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


# ---- 1. no lock-out without a key; body reads have a deadline ---------------------------------

def test_idle_sockets_without_a_key_lock_nobody_out(guarded, small_png):
    """Ten sockets that send headers and a few body bytes took every place (503 for everybody else) for as
    long as they stayed open: now the key is checked before a place is taken, so they hold none."""
    idle = [stalled_upload(guarded.url, key=False) for _ in range(10)]
    try:
        served = [post_photo(guarded.url, small_png).status_code for _ in range(4)]
        assert served == [200] * 4
    finally:
        answers = [response_of(sock) for sock in idle]
    assert {status for status, _ in answers} == {401}


def test_stalled_bodies_with_a_key_get_408_and_give_their_places_back(guarded, small_png):
    idle = [stalled_upload(guarded.url, key=True) for _ in range(4)]  # workers + queue: every place
    deadline = time.monotonic() + BODY_TIMEOUT_S / 2
    while httpx.get(guarded.url + "/readyz").json()["in_flight"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert post_photo(guarded.url, small_png).status_code == 503
    answers = [response_of(sock) for sock in idle]
    assert all(status == 408 and body["type"] == "urn:toeangle:problem:body-timeout" for status, body in answers)
    assert post_photo(guarded.url, small_png).status_code == 200


def test_from_landmarks_checks_the_key_first_and_has_a_size_limit(guarded, small_png):
    url = guarded.url + "/v1/measurements/from-landmarks"
    # 401 came after 422: FastAPI parsed and validated the body before the key was checked
    refused = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM
    big = {"landmarks": {"first_mtp": [1, 2]}, "padding": "x" * 100_000}
    too_big = httpx.post(url, json=big, headers=KEY)
    assert too_big.status_code == 413 and "65,536 bytes" in too_big.json()["detail"]
    stalled = stalled_upload(guarded.url, key=True, path="/v1/measurements/from-landmarks", declared=500)
    assert response_of(stalled)[0] == 408
    over = post_photo(guarded.url, b"\xff\xd8\xff" + bytes(21 * 1024 * 1024))
    assert over.status_code == 413 and "20,971,520 bytes for the photo" in over.json()["detail"]


# ---- 4. absurd landmarks ---------------------------------------------------------------------

POINTS = {"heel": [0, 90], "first_metatarsal": [50, 40], "first_mtp": [80, 35], "hallux_ip": [95, 25]}


@pytest.mark.parametrize("body", [
    {"landmarks": {k: [x * 1e154, y * 1e154] for k, (x, y) in POINTS.items()}},
    {"landmarks": {k: [x * 1e300, y * 1e300] for k, (x, y) in POINTS.items()}},
    {"landmarks": {k: [x * 1e-300, y * 1e-300] for k, (x, y) in POINTS.items()}},
    {"landmarks": {**POINTS, "first_mtp": {"x": 80, "y": 35, "sigma_px": 1e300}}},
    {"landmarks": POINTS, "image": {"width": -5, "height": 100}},
    {"landmarks": POINTS, "image": {"width": 60, "height": 100}},
    {"landmarks": POINTS, "view_correction": {"degrees": 3, "sigma_deg": 1e300}},
], ids=["1e154", "1e300", "1e-300", "sigma-1e300", "width--5", "beyond-the-image", "correction-sigma-1e300"])
def test_absurd_landmarks_are_422_never_ok_without_an_angle(guarded, body):
    answer = httpx.post(guarded.url + "/v1/measurements/from-landmarks", json=body, headers=KEY)
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, answer.text


# ---- 3. disconnects; clean logs -----------------------------------------------------------------

def requests_counted(server, status_class: str) -> float:
    """http_requests_total of photo requests with this status class ("4xx", "5xx")."""
    wanted = f'http_requests_total{{handler="/v1/measurements",method="POST",status="{status_class}"}} '
    lines = [line for line in httpx.get(server.url + "/metrics").text.splitlines() if line.startswith(wanted)]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_a_client_gone_mid_upload_is_a_disconnect_not_a_500(guarded):
    """It was logged as a 500 with two tracebacks and counted as a 5xx."""
    errors_before, refusals_before = requests_counted(guarded, "5xx"), requests_counted(guarded, "4xx")
    sock = stalled_upload(guarded.url, key=True)
    sock.sendall(bytes(1000))
    time.sleep(0.3)
    sock.close()
    time.sleep(0.5)
    entries = log_entries(guarded)
    assert any(e["msg"] == "client disconnected" for e in entries)
    assert not [e for e in entries if e.get("status") == 500 or e["level"] == "error" and "error" in e]
    assert "Traceback" not in guarded.log()
    assert requests_counted(guarded, "5xx") == errors_before
    assert requests_counted(guarded, "4xx") == refusals_before + 1  # 499, client closed request


def test_the_log_is_json_lines_only(guarded):
    """MediaPipe/TFLite wrote W0000 and INFO lines from the workers into the service's JSON logs."""
    lines = guarded.log().splitlines()
    assert lines and all(line.startswith("{") for line in lines), [x for x in lines if not x.startswith("{")][:3]


# ---- 2. a pool that heals ----------------------------------------------------------------------------

def worker_processes(server, killed: set[int] = frozenset()) -> list[psutil.Process]:
    """The server's worker processes (started or starting), less those already killed."""
    workers = []
    for child in psutil.Process(server.proc.pid).children():
        try:
            if child.pid not in killed and "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.Error:  # gone, or a zombie not reaped yet
            pass
    return workers


def test_the_pool_heals_from_ten_kills_in_twenty_seconds_under_load(guarded, small_png):
    """Kill a worker, send requests, kill the new worker... : the pool stayed dead (503, 0 workers, /healthz
    200, nothing logged). Now it heals, /readyz tells the truth meanwhile, and every crash is logged."""
    statuses, stop = Counter(), threading.Event()
    readiness = set()

    def load():
        with httpx.Client() as client:
            while not stop.is_set():
                try:
                    statuses[post_photo(guarded.url, small_png, client=client).status_code] += 1
                except httpx.TransportError as exc:
                    statuses[type(exc).__name__] += 1

    clients = [threading.Thread(target=load) for _ in range(3)]
    for client in clients:
        client.start()
    killed: set[int] = set()
    give_up = time.monotonic() + 30
    try:
        while len(killed) < 10 and time.monotonic() < give_up:  # a kill every 2 s: 10 in 20 s
            workers = worker_processes(guarded, killed)
            if not workers:  # both slots between a failed start and the next (backing off)
                time.sleep(0.05)
                continue
            victim = workers[len(killed) % len(workers)].pid
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.add(victim)
            time.sleep(1.0)
            ready = httpx.get(guarded.url + "/readyz")
            readiness.add((ready.status_code, ready.json().get("status") or ready.json()["type"]))
            assert httpx.get(guarded.url + "/healthz").status_code == 200
            time.sleep(1.0)
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert len(killed) == 10
    assert set(statuses) <= {200, 503, 504}, statuses  # the job on a killed worker, or a full queue
    assert readiness - {(200, "ready")}, "while healing /readyz said ready all along"
    deadline = time.monotonic() + 90
    while httpx.get(guarded.url + "/readyz").json().get("status") != "ready" and time.monotonic() < deadline:
        time.sleep(0.25)
    ready = httpx.get(guarded.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["workers"] == 2

    def hundred(share: list[int]):
        with httpx.Client() as client:
            for _ in range(25):
                answer = post_photo(guarded.url, small_png, client=client)
                share.append(answer.status_code if answer.json().get("status") == "ok" else answer.text)

    shares = [[] for _ in range(4)]
    threads = [threading.Thread(target=hundred, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(shares, []) == [200] * 100
    crashes = [e for e in log_entries(guarded) if e["msg"] in ("worker died; starting another", "worker failed to start")]
    assert len(crashes) == 10 and all(e["level"] == "error" for e in crashes)
    assert "toeangle_worker_crashes_total" in httpx.get(guarded.url + "/metrics").text


def test_one_crash_costs_only_the_request_on_that_worker(guarded, small_png):
    """A kill cost every in-flight request on both workers (503) and 6 s."""
    victim = worker_processes(guarded)[0]
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(post_photo(guarded.url, small_png).status_code))
               for _ in range(4)]
    for t in threads:
        t.start()
    os.kill(victim.pid, signal.SIGKILL)
    for t in threads:
        t.join()
    assert results.count(200) >= 3 and set(results) <= {200, 503}, results


def test_healthz_fails_when_the_pool_cannot_heal(tmp_path):
    """Workers that cannot build their Measurer (no model files): /healthz said 200 for ever, so an
    orchestrator never restarted the service."""
    srv = launch_server(tmp_path, "broken", workers="1", detector="keypoint", models_dir=str(tmp_path / "none"))
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and srv.proc.poll() is None:
            try:
                health = httpx.get(srv.url + "/healthz", timeout=2)
                if health.status_code == 503:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        assert health is not None and health.status_code == 503, srv.log()[-2000:]
        assert health.json()["type"] == "urn:toeangle:problem:broken" and "could not start" in health.json()["detail"]
        assert httpx.get(srv.url + "/readyz").status_code == 503
    finally:
        srv.stop()


# ---- 5. workers end with the server ---------------------------------------------------------------

def test_workers_exit_when_the_server_is_killed(guarded):
    """kill -9 of the server left its workers (about 390 MB each) running for ever. This ends the module's server."""
    workers = worker_processes(guarded)
    assert len(workers) == 2
    guarded.proc.kill()
    guarded.proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=5)
    for process in alive:
        process.kill()
    assert not alive
