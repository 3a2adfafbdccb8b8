"""Accuracy of the markerless path on held-out renders (seeds the training never saw).

    .venv/bin/python bench/accuracy.py [--n 400] [--calibrate] [--save rows.json] [--realism 1]

Each photo is rendered at phone resolution, JPEG-encoded, and measured through the product's
own path (decode -> keypoint detector -> angle -> verdict). The phone app's second path is
measured too: the true points, as if the user had dragged every point into place, sent back
with the photo's view correction (``from-landmarks``). Errors are against the 3D
ground-truth angle of the contract (../shared/find/README.md); the landmark error of the
model alone is also shown against the projected 2D truth.
``--calibrate`` renders the calibration seeds instead and prints the sigma scale that makes
the uncertainty cover about 90% of errors (training/run_recipe.py writes it into the card).
``--realism`` renders the same feet and cameras with skin detail, clothes, floors, shadows, light and
the phone's optics added (training/realism.py): how far the figures fall off plain renders.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))

from dataset import BENCH_START, CALIBRATION_START  # noqa: E402
from photos import render_photo  # noqa: E402
from render import Renderer  # noqa: E402
from synth import TOE_ANGLE_MIX, SceneSampler, toe_angle_density  # noqa: E402

from toeangle.clinical import load_rules  # noqa: E402
from toeangle.geometry import GeometryError, dorsiflexion_deg  # noqa: E402
from toeangle.pipeline import Measurer  # noqa: E402
from toeangle.schema import Landmarks, MeasureOptions  # noqa: E402
from toeangle.settings import Settings  # noqa: E402
from toeangle.verdict import judge  # noqa: E402

BUCKETS = [(0, 10), (10, 20), (20, 30), (30, 91)]
NEAR_THRESHOLD_DEG = 10.0
"""True angles this close to the verdict threshold are where the borderline answers fall."""


def run(n: int, start: int, realism: float = 0.0) -> list[dict]:
    sampler, renderer = SceneSampler(), Renderer()
    measurer = Measurer(Settings(detector="keypoint"))
    rows = []
    for seed in range(start, start + n):
        rgb, truth = render_photo(seed, sampler, renderer, **({"realism": realism} if realism else {}))
        started = time.perf_counter()
        result = measurer.measure_photo(jpeg(rgb), MeasureOptions()).result
        elapsed = time.perf_counter() - started
        lm = truth["landmarks"]
        row = dict(truth=truth, status=result.status, reasons=result.reasons, seconds=elapsed)
        try:
            row["angle_2d"] = float(dorsiflexion_deg(lm["heel"], lm["first_metatarsal"], lm["first_mtp"], lm["hallux_ip"]))
        except GeometryError:  # seen end-on (e.g. from above), the projected points are degenerate
            row["angle_2d"] = float("nan")
        if result.status == "ok":
            m = result.measurement
            row.update(angle=m.angle_deg, angle_lines=m.angle_2d_deg, uncertainty=m.uncertainty_deg,
                       # the angle's own verdict under the passive test: renders pose the foot every way, and
                       # whether the photo shows that test (posture) is bench/posture.py's to measure
                       label=judge(m.angle_deg, MeasureOptions(), measurer.rules, m.uncertainty_deg).label,
                       points={k: p.xy for k, p in result.landmarks.present().items()})
            # points the user can see can be dragged into place, if they draw an angle at all (above)
            if all(truth["in_frame"].values()) and np.isfinite(row["angle_2d"]):
                dragged = measurer.measure_landmarks(Landmarks.model_validate(lm), MeasureOptions(), None,
                                                     m.view_correction)
                row["angle_dragged"] = dragged.measurement.angle_deg
        rows.append(row)
    return rows


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a share: a few hundred photos pin a share near 95% down to a few points only."""
    p = successes / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def weighted_to_the_renderer(agrees: list[bool], truths: list[float], band: float = 5.0) -> float:
    """A share re-weighted band by band (of true angle) to the renderer's own mix of angles.

    A few hundred renders can hold noticeably fewer or more angles near the threshold than the
    renderer draws, and the verdict figures follow that share closely; bands without photos
    are left out of the weights.
    """
    agrees, truths = np.asarray(agrees, float), np.asarray(truths)
    total = weight = 0.0
    start, stop = min(a for _, (a, _) in TOE_ANGLE_MIX), max(b for _, (_, b) in TOE_ANGLE_MIX)
    for lo in np.arange(start, stop, band):
        inside = (truths >= lo) & (truths < lo + band)
        if inside.any():
            w = toe_angle_density(lo, lo + band)
            total, weight = total + w * agrees[inside].mean(), weight + w
    return total / weight


def summarise(rows: list[dict], title: str) -> None:
    rules = load_rules(None)
    measured = [r for r in rows if r["status"] == "ok"]
    err = np.array([abs(r["angle"] - r["truth"]["angle_deg"]) for r in measured])
    unc = np.array([r["uncertainty"] if r["uncertainty"] is not None else np.inf for r in measured])
    lenient = 0
    agrees = []
    for r in measured:
        truth_label = judge(r["truth"]["angle_deg"], MeasureOptions(), rules, None).label
        agrees.append(r["label"] == truth_label)
        lenient += agrees[-1] or (r["label"] == "borderline"
                                  and abs(r["angle"] - r["truth"]["angle_deg"]) <= r["uncertainty"])
    strict = sum(agrees)
    pck = []
    for r in measured:
        t = r["truth"]
        for name, xy in r["points"].items():
            if t["in_frame"][name]:
                pck.append(np.hypot(*(np.array(xy) - t["landmarks"][name])) <= 0.05 * t["foot_px"])
    print(f"{title}: {len(rows)} photos, {len(measured)} measured, "
          f"{100 * (1 - len(measured) / max(len(rows), 1)):.1f}% unmeasurable")
    if len(measured):
        print(f"  angle error vs 3D truth: MAE {err.mean():.2f}  median {np.median(err):.2f}  p95 {pct(err, 95):.2f}  "
              f"max {err.max():.2f} deg")
        lines = np.array([abs(r["angle_lines"] - r["truth"]["angle_deg"]) for r in measured])
        print(f"  without the view correction (angle between the points): MAE {lines.mean():.2f}  "
              f"p95 {pct(lines, 95):.2f} deg")
        lines2d = np.array([abs(r["angle_lines"] - r["angle_2d"]) for r in measured])
        lines2d = lines2d[np.isfinite(lines2d)]
        print(f"  points alone vs projected 2D truth: MAE {lines2d.mean():.2f}  p95 {pct(lines2d, 95):.2f} deg")
        floor = np.array([abs(r["angle_2d"] - r["truth"]["angle_deg"]) for r in measured])
        floor = floor[np.isfinite(floor)]
        print(f"  projection alone (perfect 2D points vs 3D truth): MAE {floor.mean():.2f}  p95 {pct(floor, 95):.2f} deg")
        decisive = sum(r["label"] != "borderline" for r in measured)
        low, high = wilson(strict, len(measured))
        threshold = rules.protocols[MeasureOptions().protocol].normal_min_deg
        near_threshold = np.mean([abs(r["truth"]["angle_deg"] - threshold) < NEAR_THRESHOLD_DEG for r in measured])
        weighted = weighted_to_the_renderer(agrees, [r["truth"]["angle_deg"] for r in measured])
        print(f"  passive verdict agreement: {100 * strict / len(measured):.1f}% strict "
              f"(95% interval {100 * low:.1f}-{100 * high:.1f}; {100 * near_threshold:.0f}% of these true angles lie "
              f"within {NEAR_THRESHOLD_DEG:.0f} deg of the {threshold:.0f} deg threshold, where borderline answers fall, against "
              f"{100 * toe_angle_density(threshold - NEAR_THRESHOLD_DEG, threshold + NEAR_THRESHOLD_DEG):.0f}% drawn: {100 * weighted:.1f}% "
              "at the renderer's mix), "
              f"{100 * lenient / len(measured):.1f}% counting a borderline that holds the truth; "
              f"{100 * (1 - decisive / len(measured)):.1f}% borderline"
              + (f", and the normal/restricted answers agree {100 * strict / decisive:.1f}%" if decisive else ""))
        dragged = np.array([abs(r["angle_dragged"] - r["truth"]["angle_deg"]) for r in measured if "angle_dragged" in r])
        if len(dragged):
            print(f"  true points dragged into place, with the photo's view correction ({len(dragged)} photos): "
                  f"MAE {dragged.mean():.2f}  median {np.median(dragged):.2f}  p95 {pct(dragged, 95):.2f} deg")
        print(f"  landmark PCK@5% foot length: {100 * np.mean(pck):.1f}%   uncertainty coverage: "
              f"{100 * np.mean(err <= unc):.1f}% (median +/- {np.median(unc):.1f} deg)")
        print(f"  time per photo: median {1000 * np.median([r['seconds'] for r in rows]):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--save", type=Path, help="write every row (truth and answer) to this JSON file")
    parser.add_argument("--realism", type=float, default=0.0,
                        help="the same feet and cameras with real photos' details added (training/realism.py), 0..1")
    args = parser.parse_args()
    start = CALIBRATION_START if args.calibrate else BENCH_START
    rows = run(args.n, start, args.realism)
    if args.save:
        args.save.write_text(json.dumps(rows, default=float))
    if args.calibrate:
        ok = [r for r in rows if r["status"] == "ok" and r["uncertainty"]]
        ratio = np.array([abs(r["angle"] - r["truth"]["angle_deg"]) / r["uncertainty"] for r in ok])
        print(f"{len(ok)} measured; multiply sigma_scale by {np.percentile(ratio, 90):.3f} for 90% coverage")
        return
    summarise(rows, "all held-out renders")
    for lo, hi in BUCKETS:
        summarise([r for r in rows if lo <= r["truth"]["off_axis_deg"] < hi], f"view {lo}-{min(hi, 90)} deg off side-on")
    near = [r for r in rows if r["truth"]["off_axis_deg"] < 20]
    summarise(near, "TARGET views within 20 deg (MAE <= 3, p95 <= 8, verdict >= 95%)")
    summarise([r for r in near if r["truth"]["view"] == "medial"], "of those, the inner side (the supported view)")
    lateral = [r for r in rows if r["truth"]["view"] == "lateral"]
    summarise(lateral, "lateral views")
    reasons: dict[str, int] = {}
    for r in rows:
        for reason in r["reasons"]:
            key = re.sub(r"\d+", "N", reason.split("(")[0].split(":")[0])[:60].strip()
            reasons[key] = reasons.get(key, 0) + 1
    print("refusal reasons:", reasons)


if __name__ == "__main__":
    main()
