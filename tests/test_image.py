"""The image's recipe: the locks (requirements/*.lock) that `make setup` and the Dockerfile install
(in step with pyproject.toml, every pin hashed, without what mediapipe asks for but pose never
loads) and the Dockerfile's order and health check. docs/image.md has the build itself, measured."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DROPPED = {"jax", "jaxlib", "sentencepiece", "sounddevice", "opencv-contrib-python"}


def _pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a uv/pip-compile lock."""
    pins: dict[str, tuple[str, int]] = {}
    name = None
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line):
            name = match[1].lower().replace("_", "-")
            pins[name] = (match[2], 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            pins[name] = (pins[name][0], pins[name][1] + 1)
    return pins


def test_the_runtime_lock_pins_every_dependency_of_pyproject_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = _pins("runtime.lock"), _pins("dev.lock")
    assert runtime and all(hashes for _, hashes in runtime.values())
    assert dev and all(hashes for _, hashes in dev.values())
    assert not set(runtime) & set(dev), "dev.lock repeats runtime packages (make lock)"
    for text in project["dependencies"]:
        req = Requirement(text)
        version = runtime[req.name.lower()][0]
        assert req.specifier.contains(version, prereleases=True), f"{req} but the lock has {version}: run make lock"
    for text in project["optional-dependencies"]["dev"]:
        req = Requirement(text)
        if req.name != "toeangle":
            assert req.specifier.contains(dev[req.name.lower()][0], prereleases=True), f"{req}: run make lock"
    assert not DROPPED & (set(runtime) | set(dev))


def test_blazepose_runs_without_what_the_lock_drops():
    """mediapipe.solutions.pose loads and runs with jax, sentencepiece, sounddevice and the GUI OpenCV absent."""
    code = ("import sys, numpy as np, mediapipe as mp\n"
            "pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False)\n"
            "pose.process(np.zeros((256, 256, 3), np.uint8))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'jaxlib', 'sentencepiece', 'sounddevice'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_dockerfile_installs_the_lock_before_the_source_and_checks_the_configured_port():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    text = "\n".join(lines)
    install = next(i for i, line in enumerate(lines) if "--require-hashes" in line)
    source = next(i for i, line in enumerate(lines) if line.startswith("COPY src"))
    assert "requirements/runtime.lock" in lines[install] and install < source
    assert "pip install --no-deps" in text.split("COPY src", 1)[1]  # the package adds nothing unlocked
    assert "apt-get" not in text  # no system packages: headless OpenCV needs no GL libraries
    check = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    health = " ".join(lines[check:check + 2])  # the options, then the command on the continued line
    assert "TOEANGLE_PORT" in health and ":8000" not in health
