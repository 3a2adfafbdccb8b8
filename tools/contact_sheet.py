"""Renders beside real photos, at the sizes the network sees them, to judge how photo-like they are.

    .venv/bin/python tools/contact_sheet.py [--realism 1] [--seeds 0:24] [--points] [--stage 1|2]
                                           [--real ../shared/real-photos] [--out build/sheet.png]

Each render is a training sample exactly as training/dataset.py makes it (stage 1: the letterboxed
whole photo, 160 px; stage 2: the forefoot crop, 128 px); the real photos are shrunk and letterboxed
the same way. ``--points`` draws the truth on the renders (heel blue .. hallux tip red) to check that
it stays on the foot. Tiles are enlarged 2x for looking.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))

import dataset  # noqa: E402

from toeangle.detectors.contract import LETTERBOX, letterbox_offset  # noqa: E402

COLOURS = [(60, 60, 255), (60, 200, 255), (60, 255, 60), (255, 200, 60), (255, 60, 60)]
"""RGB per landmark in the contract's order (heel, first_metatarsal, first_mtp, hallux_ip, hallux_tip)."""


def render_tiles(seeds: range, realism: float, stage: int, points: bool) -> list[np.ndarray]:
    options = dict(wide_view_share=0.12, top_down_share=0.0, lateral_share=0.15, realism=realism)
    dataset._init(options, 128, 45.0)
    tiles = []
    for seed in seeds:
        sample = dataset.make_sample(seed)
        scene, _ = dataset._worker["sampler"].sample(seed, **options)
        added = [name for name in scene.extra.get("realism", []) if name not in ("skin", "phone", "wall", "floor")]
        if stage == 2 and not sample["stage2_ok"]:
            continue
        img, xy = (sample["stage1"], sample["xy1"]) if stage == 1 else (sample["stage2"], sample["xy2"])
        tile = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        if points and (stage == 2 or sample["presence"]):
            colours = COLOURS if stage == 1 else COLOURS[1:]
            for (x, y), colour in zip(xy, colours):
                cv2.circle(tile, (round(2 * x + 0.5), round(2 * y + 0.5)), 3, colour, -1, cv2.LINE_AA)
        cv2.putText(tile, str(seed), (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(tile, " ".join(added), (3, tile.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
    return tiles


def real_tiles(folder: Path, stage: int) -> list[np.ndarray]:
    """Every real photo, shrunk to the stage-1 square (stage 2: its centre, for the texture only)."""
    side = dataset.STAGE1_RENDER if stage == 1 else 128
    tiles = []
    for path in sorted(folder.glob("*/rgb_*.png")) + sorted(folder.glob("*/*.jpg")):
        rgb = cv2.imread(str(path))[..., ::-1]
        h, w = rgb.shape[:2]
        if stage == 2:
            c = min(h, w) // 2
            rgb = rgb[h // 2 - c // 2:h // 2 + c // 2, w // 2 - c // 2:w // 2 + c // 2]
            h, w = rgb.shape[:2]
        scale = side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        canvas = np.full((side, side, 3), LETTERBOX, np.uint8)
        ox, oy = letterbox_offset(size, side)
        canvas[oy:oy + size[1], ox:ox + size[0]] = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        tile = cv2.resize(canvas, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.putText(tile, path.stem[:12], (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    return tiles


def sheet(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    side = tiles[0].shape[0]
    blank = np.zeros((side, side, 3), np.uint8)
    tiles = tiles + [blank] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realism", type=float, default=1.0)
    parser.add_argument("--seeds", default="0:24", help="start:stop (training seeds; the sheet is for looking)")
    parser.add_argument("--stage", type=int, choices=(1, 2), default=1)
    parser.add_argument("--points", action="store_true", help="draw the truth on the renders")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "real-photos",
                        help="folder of real photos to lay beside the renders ('' for none)")
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "sheet.png")
    args = parser.parse_args()
    start, stop = (int(v) for v in args.seeds.split(":"))
    tiles = render_tiles(range(start, stop), args.realism, args.stage, args.points)
    if str(args.real) not in ("", "."):
        tiles += real_tiles(args.real, args.stage)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), sheet(tiles, args.columns)[..., ::-1])
    print(f"{len(tiles)} tiles -> {args.out}")


if __name__ == "__main__":
    main()
