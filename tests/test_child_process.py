"""Issue 20: workers of the service and of batch end with their parent, even after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

PARENT = """
import multiprocessing, pathlib, sys, time
from toeangle.child_process import exit_with_parent

def child(ready):
    exit_with_parent()
    pathlib.Path(ready).touch()
    time.sleep(60)

if __name__ == "__main__":
    process = multiprocessing.get_context(sys.argv[1]).Process(target=child, args=(sys.argv[2],))
    process.start()
    print(process.pid, flush=True)
    time.sleep(60)
"""


def descendants_gone(processes: list[psutil.Process], timeout: float) -> list[int]:
    """The pids still running (not zombies) after ``timeout``; each is killed before returning."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    still = []
    for process in alive:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                still.append(process.pid)
            process.kill()
        except psutil.Error:
            pass
    return still


def test_a_worker_ends_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    for method in ("spawn", "forkserver"):
        ready = tmp_path / f"{method}.ready"
        parent = subprocess.Popen([sys.executable, str(script), method, str(ready)], stdout=subprocess.PIPE, text=True)
        child = psutil.Process(int(parent.stdout.readline()))
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists() and child.is_running(), f"{method}: the child did not start"
        parent.kill()
        parent.wait()
        assert descendants_gone([child], timeout=5) == [], method


def test_batch_workers_end_when_the_batch_is_killed(tmp_path):
    """kill -9 of a 2-worker batch left its forkserver, resource tracker and both workers (about 880 MiB)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    gray = np.full((120, 160, 3), 128, np.uint8)
    for i in range(300):
        Image.fromarray(gray).save(photos / f"p{i:03d}.png")
    toeangle = Path(sys.executable).with_name("toeangle")
    batch = subprocess.Popen([str(toeangle), "batch", str(photos), "--out", str(tmp_path / "out.csv"), "--workers", "2",
                              "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        family: list[psutil.Process] = []
        while time.monotonic() < deadline and batch.poll() is None:
            family = psutil.Process(batch.pid).children(recursive=True)
            if len(family) >= 4:  # resource tracker, forkserver, two workers
                break
            time.sleep(0.1)
        assert len(family) >= 4 and batch.poll() is None, "the batch ended before its workers could be seen"
    finally:
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
    assert descendants_gone(family, timeout=5) == []
