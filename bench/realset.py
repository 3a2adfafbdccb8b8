"""The annotated real-photo set: where each photo is, checking it is the annotated file, drawing points.

The photos themselves are never in the repository (some have no licence): `annotations.json`
names each by source repository, commit and path, with the sha256 of its bytes. A photo is
read from, in order, ``../shared/real-photos`` (the MIT photos the team shares), a folder given
with ``--photos`` (``ROOT/owner+name/path``), or a git mirror brought by the `fetch` tool
(``/work/.mirror/owner+name/repo``, read with ``git cat-file``, nothing extracted). The non-foot
images come from the installed scikit-image wheel's sample data (CC0 / public domain), read in place.
Points follow ../shared/find/ANNOTATING.md, in pixels of the upright photo (EXIF applied).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
ANNOTATIONS = ROOT / "bench" / "real" / "annotations.json"
SHARED_PHOTOS = Path(os.environ.get("TOEANGLE_REAL_PHOTOS", ROOT.parent / "shared" / "real-photos"))
MIRRORS = Path(os.environ.get("TOEANGLE_MIRRORS", "/work/.mirror"))

LANDMARKS = ("heel", "first_metatarsal", "first_mtp", "hallux_ip", "hallux_tip")
SIDES = ("medial", "lateral", "top", "sole", "rear", "other", "no-foot")
TOE_POSTURES = ("resting", "held back by hand", "held back by object", "lifted by person")
COLOURS = {  # BGR, one per landmark, heel to toe
    "heel": (255, 160, 0), "first_metatarsal": (0, 200, 255), "first_mtp": (0, 255, 0),
    "hallux_ip": (255, 0, 255), "hallux_tip": (0, 0, 255),
}
SHORT = {"heel": "H", "first_metatarsal": "M", "first_mtp": "J", "hallux_ip": "I", "hallux_tip": "T"}


def load_annotations(path: Path = ANNOTATIONS) -> list[dict]:
    return json.loads(path.read_text())["photos"]


def trainable(entries: list[dict]) -> list[dict]:
    """The annotated photos that may be trained on (training/real_crops.py) and so are left out of what
    bench/real.py measures: a licence that allows it and all five points placed."""
    return [e for e in entries if not e["licence"].startswith("none stated")
            and all((e.get("points") or {}).get(name) for name in LANDMARKS)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Found:
    """A photo's bytes and where they came from, or why they could not be read."""

    data: bytes | None
    where: str


def find_photo(entry: dict, photos_root: Path | None = None) -> Found:
    """The annotated photo's bytes, checked against its sha256; ``data`` is None when missing."""
    if entry.get("package"):
        return _first_match(entry, [("package", lambda: _package_file(entry["path"]).read_bytes())])
    candidates = []
    if entry.get("shared_path"):
        candidates.append(("shared", lambda: (SHARED_PHOTOS / entry["shared_path"]).read_bytes()))
    mirror_name = entry["repo"].replace("/", "+")
    if photos_root is not None:
        candidates.append(("photos", lambda: (photos_root / mirror_name / entry["path"]).read_bytes()))
    git_dir = MIRRORS / mirror_name / "repo"
    candidates.append(("mirror", lambda: subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "blob", f"{entry['commit']}:{entry['path']}"],
        capture_output=True, check=True).stdout))
    return _first_match(entry, candidates)


def _first_match(entry: dict, candidates: list) -> Found:
    """The first candidate whose bytes are the annotated file's."""
    tried = []
    for where, read in candidates:
        try:
            data = read()
        except (OSError, subprocess.CalledProcessError):
            tried.append(f"{where}: not there")
            continue
        if sha256(data) == entry["sha256"]:
            return Found(data, where)
        tried.append(f"{where}: different bytes (sha256 mismatch)")
    return Found(None, "; ".join(tried))


def _package_file(path: str) -> Path:
    """A file shipped inside an installed package, e.g. ``skimage/data/coffee.png``."""
    import importlib.util

    spec = importlib.util.find_spec(path.split("/")[0])
    if spec is None or spec.origin is None:
        raise OSError(f"{path}: package not installed")
    return Path(spec.origin).parent.joinpath(*path.split("/")[1:])


def upright_rgb(data: bytes) -> np.ndarray:
    """The photo as the product sees it in original pixels: EXIF orientation applied, RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def points_of(entry_points: dict | None) -> dict[str, np.ndarray]:
    """``{"heel": [x, y] or None, ...}`` -> the present points as arrays."""
    return {n: np.asarray(p, float) for n, p in (entry_points or {}).items() if p is not None}


def draw_points(bgr: np.ndarray, points: dict[str, np.ndarray], scale: float = 1.0, style: str = "dot",
                colour: tuple[int, int, int] | None = None) -> None:
    """Landmarks with their letter; the metatarsal and phalanx axes as lines. ``style`` dot or cross."""
    unit = max(1, round(max(bgr.shape[:2]) / 700))
    xy = {n: (int(round((p[0] + 0.5) * scale - 0.5)), int(round((p[1] + 0.5) * scale - 0.5)))
          for n, p in points.items()}
    line = colour or (255, 255, 255)
    for a, b in (("first_metatarsal", "first_mtp"), ("first_mtp", "hallux_ip"), ("hallux_ip", "hallux_tip")):
        if a in xy and b in xy:
            cv2.line(bgr, xy[a], xy[b], line, unit, cv2.LINE_AA)
    for name, (x, y) in xy.items():
        c = colour or COLOURS[name]
        if style == "cross":
            r = 5 * unit
            cv2.line(bgr, (x - r, y - r), (x + r, y + r), c, unit, cv2.LINE_AA)
            cv2.line(bgr, (x - r, y + r), (x + r, y - r), c, unit, cv2.LINE_AA)
        else:
            cv2.circle(bgr, (x, y), 3 * unit, c, -1, cv2.LINE_AA)
            cv2.circle(bgr, (x, y), 3 * unit, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(bgr, SHORT[name], (x + 4 * unit, y - 4 * unit), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * unit,
                    (0, 0, 0), 3 * unit, cv2.LINE_AA)
        cv2.putText(bgr, SHORT[name], (x + 4 * unit, y - 4 * unit), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * unit,
                    c, unit, cv2.LINE_AA)


def fit(bgr: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Resized so that its longest side is ``side``; returns the factor."""
    factor = side / max(bgr.shape[:2])
    return cv2.resize(bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else
                      cv2.INTER_CUBIC), factor


def tile(images: list[np.ndarray], cols: int, cell: int, captions: list[str] | None = None) -> np.ndarray:
    """A contact sheet: each image fitted into a ``cell``-sized square, with an optional caption."""
    rows = max(1, -(-len(images) // cols))
    sheet = np.full((rows * cell, cols * cell, 3), 32, np.uint8)
    for k, image in enumerate(images):
        small, _ = fit(image, cell)
        r, c = divmod(k, cols)
        sheet[r * cell:r * cell + small.shape[0], c * cell:c * cell + small.shape[1]] = small
        if captions:
            for i, text in enumerate(captions[k].split("\n")):
                org = (c * cell + 4, r * cell + 16 + 16 * i)
                cv2.putText(sheet, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(sheet, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1, cv2.LINE_AA)
    return sheet
