"""Shared fixtures: real photo backgrounds from ../shared and stickers drawn at known places."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOEANGLE_SHARED_DIR", REPO.parent / "shared"))
REAL_PHOTOS = sorted((SHARED / "real-photos").glob("*/rgb_*.png"))
STICKER_RGB = (40, 200, 40)


def sticker_geometry(angle_deg: float, rng: np.random.Generator, width: int, height: int,
                     with_heel: bool = True) -> dict[str, np.ndarray]:
    """Landmark positions of a side-on foot (segments 47/25/14% of foot length), randomly placed and turned."""
    foot = rng.uniform(0.45, 0.8) * min(width, height)
    declination = np.radians(rng.uniform(10, 30))
    axis = np.array([np.cos(declination), np.sin(declination)])
    phal = np.radians(np.degrees(declination) - angle_deg)
    mtp = np.zeros(2)
    local = {
        "first_mtp": mtp,
        "first_metatarsal": mtp - 0.25 * foot * axis,
        "hallux_ip": mtp + 0.14 * foot * np.array([np.cos(phal), np.sin(phal)]),
        "heel": np.array([-0.72 * foot, 0.1 * foot]),
    }
    if not with_heel:
        del local["heel"]
    turn = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(turn), np.sin(turn)
    rot = np.array([[c, -s], [s, c]])
    if rng.random() < 0.5:
        rot = rot @ np.diag([-1.0, 1.0])  # a left foot
    pts = {k: v @ rot.T for k, v in local.items()}
    lo = np.min(list(pts.values()), axis=0)
    hi = np.max(list(pts.values()), axis=0)
    margin = 20
    offset = np.array([rng.uniform(margin - lo[0], width - margin - hi[0]),
                       rng.uniform(margin - lo[1], height - margin - hi[1])])
    return {k: v + offset for k, v in pts.items()}


def draw_stickers(rgb: np.ndarray, points: dict[str, np.ndarray], radius: float) -> np.ndarray:
    """Anti-aliased discs at sub-pixel centres (cv2 fixed point, 4 fractional bits)."""
    out = rgb.copy()
    for x, y in points.values():
        cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), int(round(radius * 16)), STICKER_RGB,
                   cv2.FILLED, cv2.LINE_AA, shift=4)
    return out


def jpeg_bytes(rgb: np.ndarray, quality: int = 92, orientation: int = 1, gps: bool = False) -> bytes:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="session")
def real_photos() -> list[Path]:
    if not REAL_PHOTOS:
        pytest.fail(f"no real photos under {SHARED}/real-photos: set TOEANGLE_SHARED_DIR")
    return REAL_PHOTOS


@pytest.fixture
def marker_photo(real_photos):
    """A real photo with four stickers on a 38-degree toe; returns (jpeg bytes, true points)."""
    rng = np.random.default_rng(7)
    rgb = load_rgb(real_photos[1])
    points = sticker_geometry(38.0, rng, rgb.shape[1], rgb.shape[0])
    return jpeg_bytes(draw_stickers(rgb, points, 7.0)), points


# Real `toeangle serve` processes for the service tests (tests/service_server.py).
from service_server import server, tight_server  # noqa: E402,F401
