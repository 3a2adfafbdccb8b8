"""Real `toeangle serve` processes on loopback, started once per session per configuration (fixtures in conftest)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def launch_server(tmp: Path, name: str, **env: str) -> Server:
    """`toeangle serve` with TOEANGLE_* overrides, just started."""
    port = free_port()
    log_path = tmp / f"{name}.log"
    full_env = {**os.environ, "TOEANGLE_PORT": str(port), "TOEANGLE_HOST": "127.0.0.1",
                **{f"TOEANGLE_{k.upper()}": v for k, v in env.items()}}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(VENV_BIN / "toeangle"), "serve"], env=full_env, stdout=log, stderr=subprocess.STDOUT)
    return Server(f"http://127.0.0.1:{port}", proc, log_path)


def start_server(tmp: Path, name: str, **env: str) -> Server:
    """`toeangle serve` with TOEANGLE_* overrides; returns once /readyz says ready."""
    server = launch_server(tmp, name, **env)
    proc = server.proc
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"server not ready in 120 s:\n{server.log()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The default configuration (2 workers), with a 2 MB upload limit to keep the big-upload tests small."""
    srv = start_server(tmp_path_factory.mktemp("srv"), "main", max_upload_bytes=str(2 * 1024 * 1024),
                       cors_origins="https://app.example")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tight_server(tmp_path_factory):
    """One worker, no queue, a tiny time limit and API keys: for 503, 504 and 401."""
    srv = start_server(tmp_path_factory.mktemp("tight"), "tight", workers="1", queue_size="0",
                       request_timeout_s="0.05", api_keys="key-one,key-two")
    yield srv
    srv.stop()
