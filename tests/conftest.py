"""Shared fixtures: real photo backgrounds from ../shared and stickers drawn at known places."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOEANGLE_SHARED_DIR", REPO.parent / "shared"))
REAL_PHOTOS = sorted((SHARED / "real-photos").glob("*/rgb_*.png"))
STICKER_RGB = (40, 200, 40)
STICKER_PLACES = json.loads((REPO / "tests" / "fixtures" / "sticker_places.json").read_text())["photos"]
"""Where a person would put the four stickers on real photos of ../shared/real-photos."""
GREEN_RENDERS = REPO / "tests" / "fixtures" / "green_renders"
"""Renders of FIND feet before green dots, tiles, stripes and paper, some in a green sock (training/sticker_backdrops.py)."""


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


def retone_skin(rgb: np.ndarray, tone: str) -> np.ndarray:
    """The photo's red-orange (skin) hues made darker or lighter, as another person's skin would be."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    skin = cv2.GaussianBlur(((hsv[..., 0] <= 25) | (hsv[..., 0] >= 170)).astype(np.float32), (0, 0), 3)[..., None]
    target = rgb * np.array([0.55, 0.44, 0.38]) if tone == "darker" else rgb + (255.0 - rgb) * 0.25
    return np.clip(rgb * (1 - skin) + target * skin, 0, 255).astype(np.uint8)


def stickers_at_landmarks(rgb: np.ndarray, landmarks: dict, rng: np.random.Generator
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """8-20 mm stickers at a render's true heel, metatarsal, MTP and IP points. The heel landmark (the
    heel's most posterior point) lies on the outline; a sticker on the back of the heel sits its
    radius and a bit inside it."""
    truth = {n: np.array(landmarks[n], float) for n in ("heel", "first_metatarsal", "first_mtp", "hallux_ip")}
    metatarsal = float(np.linalg.norm(truth["first_mtp"] - truth["first_metatarsal"]))
    radius = max(3.0, rng.uniform(0.06, 0.15) * metatarsal)
    inward = truth["first_metatarsal"] - truth["heel"]
    truth["heel"] = truth["heel"] + 1.3 * radius * inward / np.linalg.norm(inward)
    return draw_stickers(rgb, truth, radius), truth


def stickers_at_angle(angle_deg: float, long_side: int = 1024, radius_mm: float = 12.0,
                      with_heel: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Stickers on the real foot of solol/l.jpg with the toe's sticker turned to ``angle_deg`` about the
    big-toe joint (up to 90 degrees it stays on the skin of the toes and forefoot). Returns the RGB
    photo at ``long_side`` pixels and the sticker centres."""
    rgb = load_rgb(SHARED / "real-photos" / "solol" / "l.jpg")
    k = long_side / max(rgb.shape[:2])
    rgb = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    points = {n: (np.array(p, float) + 0.5) * k - 0.5 for n, p in STICKER_PLACES["solol/l.jpg"].items()}
    axis = points["first_mtp"] - points["first_metatarsal"]
    turn = np.radians(angle_deg) * np.sign(np.cross(axis, points["heel"] - points["first_metatarsal"]))
    c, s = np.cos(-turn), np.sin(-turn)
    toe = np.linalg.norm(points["hallux_ip"] - points["first_mtp"]) * axis / np.linalg.norm(axis)
    points["hallux_ip"] = points["first_mtp"] + np.array([[c, -s], [s, c]]) @ toe
    if not with_heel:
        del points["heel"]
    radius = radius_mm / 65.0 * np.linalg.norm(axis) / 2
    return draw_stickers(rgb, points, radius), points


def quarter_turn(rgb: np.ndarray, points: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The photo turned a quarter anticlockwise (np.rot90) and its points with it: (x, y) -> (y, width - 1 - x)."""
    width = rgb.shape[1]
    return np.ascontiguousarray(np.rot90(rgb)), {n: np.array([p[1], width - 1 - p[0]]) for n, p in points.items()}


def stickers_on_a_real_foot(case: int) -> tuple[bytes, dict[str, np.ndarray]]:
    """A real photo with stickers where a person would put them, varied as phone photos vary.

    Per case: one of the annotated photos (STICKER_PLACES) at 800-1600 px, each sticker moved
    by up to a few millimetres, 8-20 mm stickers in slightly different greens, darker or lighter
    skin, a shadow across one sticker, the phone held in any of four ways or the photo mirrored,
    JPEG quality 80-95. Returns the JPEG and the sticker centres in its pixels.
    """
    rng = np.random.default_rng([case, 18])
    name = sorted(STICKER_PLACES)[case % len(STICKER_PLACES)]
    rgb = load_rgb(SHARED / "real-photos" / name)
    k = rng.uniform(800, 1600) / max(rgb.shape[:2])
    rgb = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    points = {n: (np.array(p, float) + 0.5) * k - 0.5 for n, p in STICKER_PLACES[name].items()}
    metatarsal = float(np.linalg.norm(points["first_mtp"] - points["first_metatarsal"]))
    points = {n: p + rng.normal(0, 0.01 * metatarsal, 2) for n, p in points.items()}
    tone = rng.choice(["as is", "darker", "lighter"])
    if tone != "as is":
        rgb = retone_skin(rgb, tone)
    radius = max(4.0, rng.uniform(0.06, 0.15) * metatarsal)
    green = tuple(int(c) for c in np.clip(np.array(STICKER_RGB) * rng.uniform(0.8, 1.1), 0, 255))
    out = rgb.copy()
    for x, y in points.values():
        cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), int(round(radius * 16)), green,
                   cv2.FILLED, cv2.LINE_AA, shift=4)
    if rng.random() < 0.3:  # a soft shadow edge across one sticker
        cx, cy = points[list(points)[rng.integers(4)]]
        t = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[:out.shape[0], :out.shape[1]]
        side = np.clip(((xs - cx) * np.cos(t) + (ys - cy) * np.sin(t)) / 2 + 0.5, 0, 1)[..., None]
        out = (out * (1 - 0.45 * side)).astype(np.uint8)
    turns, mirror = int(rng.integers(4)), bool(rng.random() < 0.25)
    for _ in range(turns):
        out, points = quarter_turn(out, points)
    if mirror:
        out = out[:, ::-1]
        points = {n: np.array([out.shape[1] - 1 - p[0], p[1]]) for n, p in points.items()}
    return jpeg_bytes(np.ascontiguousarray(out), quality=int(rng.integers(80, 96))), points


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
    """A real 480x640 phone photo (the foot lying across it) with four stickers on a 38-degree toe;
    returns (jpeg bytes, true points)."""
    rgb, points = quarter_turn(*stickers_at_angle(38.0, long_side=640))
    return jpeg_bytes(rgb), points


# Real `toeangle serve` processes for the service tests (tests/service_server.py).
from service_server import server, tight_server  # noqa: E402,F401


def mp4(frames: list[np.ndarray], fps: float, path: Path) -> bytes:
    """An MPEG-4 part 2 clip of RGB frames (OpenCV's own encoder), as bytes."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path.read_bytes()


@pytest.fixture(scope="session")
def rendered_heel_raise(tmp_path_factory):
    """A rendered heel raise (FIND foot, camera shake, motion blur) and its true angle per frame."""
    pytest.importorskip("moderngl")
    sys.path.insert(0, str(REPO / "training"))
    try:
        from clips import CLIPS_START, render_clip, write_mp4
        clip = render_clip(CLIPS_START + 1, n_frames=24, long_side=640, rise_deg=28.0)
    except Exception as exc:  # no EGL on this machine
        pytest.skip(f"cannot render: {exc}")
    path = tmp_path_factory.mktemp("clips") / "heel_raise.mp4"
    write_mp4(clip, str(path))
    return path, clip
