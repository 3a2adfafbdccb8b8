"""The product on photos from the evaluation renderer (bench/evalrender/), which training never sees.

    .venv/bin/python bench/eval_render.py [--n 300] [--cache build/evalrender]

Renders N photos (cached as JPEG + truth JSON; a second run only measures), measures each with
the product (``toeangle.pipeline.Measurer``; detector from TOEANGLE_DETECTOR, default keypoint)
and prints: on inner-side views within 20 degrees of side-on the measured share and the angle
error against the contract's 3D truth (targets: errors over 15 degrees <= 2% of those measured,
MAE <= 4), refusals by reason, whether outer-side, top-down and end-on views are refused with the
right reason, and how many of these sticker-free photos the marker path would measure (what
`auto` does first; target 0). Writes a contact sheet of renders beside ../shared/real-photos and
an overlay sheet of the product's answers into the cache folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "training"), str(ROOT / "bench")]

from toeangle.overlay import draw_overlay  # noqa: E402
from toeangle.pipeline import Measurer  # noqa: E402
from toeangle.schema import MeasureOptions  # noqa: E402
from toeangle.settings import Settings  # noqa: E402

REAL_PHOTOS = ROOT.parent / "shared" / "real-photos"
REAL_ON_SHEET = ("solol/ad.jpg", "solol/l.jpg", "solol/ag.jpg", "FOCUS/rgb_000607.png", "FOCUS/rgb_000010.png",
                 "FOUND/rgb_2.png")
NEAR_DEG = 20.0
GROSS_DEG = 15.0
REASONS = {  # short name: words that only that refusal uses
    "outer side": "outer side", "view off side-on": "away from side-on", "too small": "too small",
    "cut off": "cut off", "too dark": "too dark", "overexposed": "overexposed", "blurred": "blurred",
    "heel unsure": "heel could not", "uncertain": "too uncertain", "no foot": "no foot",
}


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def reason_names(reasons) -> list[str]:
    return [next((k for k, words in REASONS.items() if words in r), r[:40]) for r in reasons]


def render_all(n: int, cache: Path) -> tuple[list[dict], list[float]]:
    """Truth of seeds 0..n-1, rendering those not cached; and the seconds each new render took."""
    cache.mkdir(parents=True, exist_ok=True)
    renderer, truths, seconds = None, [], []
    for seed in range(n):
        jpg, meta = cache / f"{seed:05d}.jpg", cache / f"{seed:05d}.json"
        if not meta.exists():
            if renderer is None:
                from evalrender import EvalRenderer
                renderer = EvalRenderer()
            started = time.perf_counter()
            photo = renderer.photo(seed)
            seconds.append(time.perf_counter() - started)
            jpg.write_bytes(photo.jpeg)
            meta.write_text(json.dumps(photo.truth))
        truths.append(json.loads(meta.read_text()))
    return truths, seconds


def measure_all(truths: list[dict], cache: Path, detector: str) -> list[dict]:
    measurer = Measurer(Settings(detector=detector))
    markers = Measurer(Settings(detector="markers"))
    rows = []
    for truth in truths:
        data = (cache / f"{truth['seed']:05d}.jpg").read_bytes()
        started = time.perf_counter()
        result = measurer.measure_photo(data, MeasureOptions()).result
        row = dict(truth=truth, status=result.status, reasons=list(result.reasons), detector=result.detector,
                   seconds=time.perf_counter() - started,
                   # `auto` takes the stickers' answer whenever the marker path can measure
                   markers_measured=markers.measure_photo(data, MeasureOptions()).result.status == "ok")
        if result.status == "ok":
            row["angle"] = result.measurement.angle_deg
            row["error"] = abs(result.measurement.angle_deg - truth["angle_deg"])
            row["points"] = {k: p.xy for k, p in result.landmarks.present().items()}
        rows.append(row)
    return rows


def landmark_errors(rows: list[dict]) -> np.ndarray:
    """Distances of the found points from the true visible ones, as a share of the true foot length."""
    out = []
    for r in rows:
        t = r["truth"]
        for name, xy in r.get("points", {}).items():
            if t["visible"][name]:
                out.append(np.hypot(*(np.array(xy) - t["landmarks"][name])) / max(t["foot_px"], 1))
    return np.array(out)


def report(rows: list[dict], detector: str) -> None:
    near = [r for r in rows if r["truth"]["inner_side"] and r["truth"]["off_axis_deg"] < NEAR_DEG]
    ok = [r for r in near if r["status"] == "ok"]
    err = np.array([r["error"] for r in ok])
    print(f"TARGET inner side within {NEAR_DEG:.0f} deg of side-on: {len(near)} photos, {len(ok)} measured "
          f"({100 * len(ok) / max(len(near), 1):.1f}%)")
    if len(ok):
        gross = int((err > GROSS_DEG).sum())
        print(f"  angle error vs 3D truth: MAE {err.mean():.2f}  median {np.median(err):.2f}  p95 {pct(err, 95):.2f}  "
              f"max {err.max():.2f} deg (target MAE <= 4)")
        print(f"  errors over {GROSS_DEG:.0f} deg: {gross} of {len(ok)} measured ({100 * gross / len(ok):.1f}%; target <= 2%)")
        lm = landmark_errors(ok)
        print(f"  landmark error: median {100 * np.median(lm):.1f}%  p95 {100 * pct(lm, 95):.1f}% of foot length")
    print("  refusals by reason:", dict(Counter(n for r in near if r["status"] != "ok" for n in reason_names(r["reasons"]))))
    for title, keep in (("  by light", "light"), ("  by setting", "setting"), ("  by lens", "lens")):
        parts = []
        for value in sorted({r["truth"][keep] for r in near}):
            sub = [r for r in near if r["truth"][keep] == value]
            got = [r["error"] for r in sub if r["status"] == "ok"]
            parts.append(f"{value} {len(got)}/{len(sub)}" + (f" MAE {np.mean(got):.1f}" if got else ""))
        print(f"{title}: " + ", ".join(parts))
    oblique = [r for r in rows if r["truth"]["inner_side"] and r["truth"]["off_axis_deg"] >= NEAR_DEG]
    got = [r["error"] for r in oblique if r["status"] == "ok"]
    print(f"inner side {NEAR_DEG:.0f}-45 deg off: {len(oblique)} photos, {len(got)} measured"
          + (f", MAE {np.mean(got):.2f}, over {GROSS_DEG:.0f} deg: {sum(e > GROSS_DEG for e in got)}" if got else ""))
    for view, right in (("lateral", {"outer side"}), ("top_down", {"view off side-on"}),
                        ("end_on", {"view off side-on", "outer side"})):
        sub = [r for r in rows if r["truth"]["view"] == view]
        refused = [r for r in sub if r["status"] != "ok"]
        rightly = [r for r in refused if right & set(reason_names(r["reasons"]))]
        got = [r["error"] for r in sub if r["status"] == "ok"]
        print(f"{view} views: {len(sub)}, refused {len(refused)} ({100 * len(refused) / max(len(sub), 1):.0f}%), "
              f"with the right reason ({' or '.join(sorted(right))}) {len(rightly)} "
              f"({100 * len(rightly) / max(len(sub), 1):.0f}%); measured {len(got)}"
              + (f" (MAE {np.mean(got):.1f})" if got else "")
              + "; reasons " + str(dict(Counter(n for r in refused for n in reason_names(r["reasons"])))))
    by_markers = [r["truth"]["seed"] for r in rows if r["markers_measured"]]
    print(f"marker path (what TOEANGLE_DETECTOR=auto tries first) measured {len(by_markers)} of {len(rows)} "
          f"sticker-free renders (target 0)" + (f": seeds {by_markers[:20]}" if by_markers else ""))
    if detector == "auto":
        taken = sum(r["detector"].startswith("markers") for r in rows)
        print(f"  with {detector}: {taken} answers came from the marker path")


def tile(rgb: np.ndarray, size: int, label: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(rgb, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    out = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, label[:42], (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, thick, cv2.LINE_AA)
    return out


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    blank = np.full_like(tiles[0], 255)
    tiles = tiles + [blank] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])


def contact_sheet(rows: list[dict], cache: Path, size: int = 300) -> Path:
    real = [REAL_PHOTOS / name for name in REAL_ON_SHEET if (REAL_PHOTOS / name).exists()]
    tiles = [tile(cv2.imread(str(p))[..., ::-1], size, f"REAL {p.parent.name}/{p.name}") for p in real]
    picked = [r for r in rows if r["truth"]["inner_side"]][:14] + [r for r in rows if not r["truth"]["inner_side"]][:6]
    for r in picked:
        t = r["truth"]
        rgb = cv2.imread(str(cache / f"{t['seed']:05d}.jpg"))[..., ::-1]
        tiles.append(tile(rgb, size, f"{t['seed']} {t['view']} {t['off_axis_deg']:.0f}d {t['light']} {t['surface']}"))
    path = cache / "contact_sheet.png"
    cv2.imwrite(str(path), grid(tiles, 6)[..., ::-1])
    return path


def overlay_sheet(rows: list[dict], cache: Path, detector: str, size: int = 360) -> Path:
    """The product's own overlay on inner-side renders (worst errors first), the true points as rings."""
    near = [r for r in rows if r["truth"]["inner_side"] and r["truth"]["off_axis_deg"] < NEAR_DEG]
    ok = sorted((r for r in near if r["status"] == "ok"), key=lambda r: -r["error"])
    chosen = ok[:8] + ok[8::max(1, len(ok) // 8)][:8] + [r for r in near if r["status"] != "ok"][:8]
    measurer = Measurer(Settings(detector=detector))
    tiles = []
    for r in chosen:
        t = r["truth"]
        data = (cache / f"{t['seed']:05d}.jpg").read_bytes()
        outcome = measurer.measure_photo(data, MeasureOptions())
        canvas = draw_overlay(outcome.image, outcome.result)
        sx, sy = outcome.image.scale
        for xy in t["landmarks"].values():
            cv2.circle(canvas, (int(xy[0] / sx), int(xy[1] / sy)), max(4, canvas.shape[1] // 120), (0, 255, 255), 2)
        label = f"{t['seed']} true {t['angle_deg']:.0f}" + (f" err {r['error']:.1f}" if "error" in r
                                                           else " " + ",".join(reason_names(r["reasons"])))
        tiles.append(tile(canvas, size, label))
    path = cache / "overlays.png"
    if tiles:
        cv2.imwrite(str(path), grid(tiles, 6)[..., ::-1])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "evalrender")
    parser.add_argument("--save", type=Path, help="write every row (truth and answer) to this JSON file")
    args = parser.parse_args()
    detector = os.environ.get("TOEANGLE_DETECTOR", "keypoint")
    truths, render_seconds = render_all(args.n, args.cache)
    rows = measure_all(truths, args.cache, detector)
    if args.save:
        args.save.write_text(json.dumps(rows, default=float))
    print(f"evaluation renders: {len(rows)} photos (seeds 0-{args.n - 1}), detector {detector}; "
          + (f"render {np.median(render_seconds):.1f} s/photo (median of {len(render_seconds)} new); " if render_seconds
             else "all renders cached; ")
          + f"product {1000 * np.median([r['seconds'] for r in rows]):.0f} ms/photo (median)")
    report(rows, detector)
    print("contact sheet:", contact_sheet(rows, args.cache))
    print("overlays:", overlay_sheet(rows, args.cache, detector))


if __name__ == "__main__":
    main()
