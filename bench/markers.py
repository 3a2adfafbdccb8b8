"""Skin markers: no stickers where there are none, and the stickers where they are.

    .venv/bin/python bench/markers.py [--cases 200] [--renders 100] [--extra DIR ...]

Sticker-free photos, each through the marker detector (a measurement is a false detection):
the real photos (../shared/real-photos), samples/, the green renders of tests/fixtures (and
``--renders`` fresh ones with the render extra: green dots, tiles, stripes, paper, green socks),
the gym frame of tests/fixtures/pose2sim, and any ``--extra`` folders (photos that may be
measured but never committed, e.g. the clinical photos of uwm-bigdata/wound-segmentation, or all
frames of pose2sim's Demo_SinglePerson/videos/cam01.mp4 written out with OpenCV).

Photos with stickers: ``--cases`` real photos with stickers where a person puts them
(tests/conftest.py: stickers_on_a_real_foot) and renders with stickers drawn at their true
landmarks (samples/, green renders): found (all four), centre error, angle error. Also the
random-placement cases the marker tests used before (stickers drawn anywhere on a real photo,
mostly on the floor): how many the detector still measures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "training")]

from conftest import (  # noqa: E402
    GREEN_RENDERS,
    SHARED,
    draw_stickers,
    jpeg_bytes,
    load_rgb,
    sticker_geometry,
    stickers_at_landmarks,
    stickers_on_a_real_foot,
)

from toeangle.decode import decode_image  # noqa: E402
from toeangle.detectors import build_detector  # noqa: E402
from toeangle.geometry import dorsiflexion_deg  # noqa: E402
from toeangle.settings import Settings  # noqa: E402

FOUR = ("heel", "first_metatarsal", "first_mtp", "hallux_ip")
PHOTO_TYPES = ("*.jpg", "*.jpeg", "*.png")


def photos_in(folder: Path) -> list[Path]:
    return sorted(p for pattern in PHOTO_TYPES for p in folder.rglob(pattern) if "mask" not in p.name)


def false_detections(detector, name: str, images) -> None:
    """Sticker-free photos: how many the marker path measures, and why it refused the rest."""
    measured, seen, reasons = [], 0, {}
    for label, data in images:
        detection = detector.detect(decode_image(data))
        seen += 1
        if detection.quality.status == "ok":
            measured.append(label)
        else:
            reason = detection.quality.reasons[0].split(":")[1].split("(")[0].strip()[:60]
            reasons[reason] = reasons.get(reason, 0) + 1
    top = ", ".join(f"{n} {r!r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
    print(f"{name:38s} {seen:5d} photos  false detections {len(measured):3d}  {measured[:4]}  refused: {top}")


def accuracy(detector, name: str, cases) -> None:
    """Photos with four stickers: share found, worst centre error and angle error."""
    found, centre, angle, total = 0, [], [], 0
    for data, truth in cases:
        total += 1
        detection = detector.detect(decode_image(data))
        points = detection.landmarks.present()
        if detection.quality.status != "ok" or set(FOUR) - set(points):
            continue
        found += 1
        centre.append(max(np.hypot(points[n].x - truth[n][0], points[n].y - truth[n][1]) for n in FOUR))
        measured = dorsiflexion_deg(*(np.array(points[n].xy) for n in FOUR))
        angle.append(abs(float(measured - dorsiflexion_deg(*(truth[n] for n in FOUR)))))
    figures = (f"centre error max {max(centre):.2f} px p95 {np.percentile(centre, 95):.2f}  "
               f"angle error max {max(angle):.2f} deg p95 {np.percentile(angle, 95):.2f}") if found else ""
    print(f"{name:38s} {total:5d} photos  found {found:4d} ({100 * found / max(total, 1):.1f}%)  {figures}")


def encoded(paths: list[Path]):
    for path in paths:
        yield path.name, path.read_bytes()


def rendered_cases(rendered, seed: int):
    """Stickers at the true landmarks of inner-side renders with the whole foot in frame."""
    rng = np.random.default_rng(seed)
    for rgb, truth in rendered:
        if truth.get("view", "medial") == "medial" and all(truth["in_frame"].values()):
            drawn, points = stickers_at_landmarks(rgb, truth["landmarks"], rng)
            yield jpeg_bytes(drawn), points


def random_placement_cases(n: int, photos: list[Path]):
    """The earlier tests' cases: 960x1280 real photos, stickers at a random place and turn (rarely on the foot)."""
    for case in range(n):
        rng = np.random.default_rng(case)
        rgb = cv2.resize(load_rgb(photos[case % len(photos)]), (960, 1280), interpolation=cv2.INTER_CUBIC)
        points = sticker_geometry(rng.uniform(-15, 95), rng, rgb.shape[1], rgb.shape[0])
        yield jpeg_bytes(draw_stickers(rgb, points, radius=rng.uniform(8, 20)), quality=int(rng.integers(80, 96))), points


def fresh_green_renders(n: int):
    from photos import render_photo
    from render import Renderer
    from sticker_backdrops import GreenBackdrops

    sampler, renderer = GreenBackdrops(), Renderer()
    for seed in range(4_100_000, 4_100_000 + n):
        yield render_photo(seed, sampler, renderer, lateral_share=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--renders", type=int, default=0, help="fresh green renders (needs the render extra)")
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more sticker-free photo folders")
    args = parser.parse_args()
    detector = build_detector(Settings(detector="markers"))
    real = photos_in(SHARED / "real-photos")
    samples = photos_in(ROOT / "samples")
    green = photos_in(GREEN_RENDERS)
    print("sticker-free photos (a measurement is a false detection)")
    false_detections(detector, "real photos", encoded(real))
    false_detections(detector, "samples/ renders", encoded(samples))
    false_detections(detector, "green renders (tests/fixtures)", encoded(green))
    false_detections(detector, "gym frame (pose2sim cam01 #78)", encoded(photos_in(ROOT / "tests/fixtures/pose2sim")))
    fresh = list(fresh_green_renders(args.renders)) if args.renders else []
    if fresh:
        false_detections(detector, f"green renders (fresh, {args.renders})",
                         ((str(t["seed"]), jpeg_bytes(rgb)) for rgb, t in fresh))
    for folder in args.extra:
        false_detections(detector, f"{folder.name}", encoded(photos_in(folder)))
    print(f"random-placement cases ({args.cases}, stickers mostly off the foot)")
    accuracy(detector, "stickers anywhere on real photos",
             random_placement_cases(args.cases, sorted((SHARED / "real-photos").glob("*/rgb_*.png"))))
    print("photos with stickers on the foot")
    accuracy(detector, "real feet (stickers_on_a_real_foot)", (stickers_on_a_real_foot(c) for c in range(args.cases)))
    truth = json.loads((ROOT / "samples/ground_truth.json").read_text())
    accuracy(detector, "samples/ renders", rendered_cases(
        ((load_rgb(ROOT / "samples" / name), t) for name, t in truth.items()), 1))
    green_truth = json.loads((GREEN_RENDERS / "ground_truth.json").read_text())
    accuracy(detector, "green renders (tests/fixtures)", rendered_cases(
        ((load_rgb(GREEN_RENDERS / name), t) for name, t in green_truth.items()), 2))
    if fresh:
        accuracy(detector, f"green renders (fresh, {args.renders})", rendered_cases(fresh, 3))


if __name__ == "__main__":
    main()
