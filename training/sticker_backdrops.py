"""Renders full of sticker-like green that is not a sticker: green dots, tiles, paper or a treadmill-green
floor behind the foot, or a green sock on it. The marker path must find no stickers in any of them
(bench/markers.py; tests/fixtures/green_renders/ holds a few, made by ``python training/sticker_backdrops.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from render import Mesh
from synth import SceneSampler

GREENS = np.array([[40, 200, 40], [30, 170, 60], [90, 200, 70], [20, 140, 50], [60, 180, 110]], np.float64)
"""Sticker green and its neighbours (RGB 0..255)."""


def green_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Green dots of one size (the hardest: they look like stickers), tiles, stripes or plain green."""
    green = GREENS[rng.integers(len(GREENS))] * rng.uniform(0.8, 1.1)
    base = rng.uniform(150, 250, 3) if rng.random() < 0.7 else green * rng.uniform(0.4, 0.7)
    img = np.ones((size, size, 3)) * base
    kind = rng.choice(["dots", "tiles", "stripes", "plain"], p=[0.45, 0.25, 0.15, 0.15])
    if kind == "dots":
        step, radius = int(rng.integers(20, 80)), None
        radius = int(rng.integers(3, max(4, step // 3)))
        for y in range(step // 2, size, step):
            for x in range(step // 2, size, step):
                cv2.circle(img, (x, y), radius, green.tolist(), -1, cv2.LINE_AA)
    elif kind == "tiles":
        step = int(rng.integers(16, 96))
        img[:] = green
        grout = (np.arange(size) % step) < 3
        img[grout] = base
        img[:, grout] = base
    elif kind == "stripes":
        step = int(rng.integers(10, 60))
        img[(np.arange(size) % step) < step // 2] = green
    else:
        img[:] = green
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


class GreenBackdrops(SceneSampler):
    """SceneSampler's scenes with every wall and floor green, a green background, and sometimes a green sock."""

    def sample(self, seed: int, **options):
        scene, truth = super().sample(seed, **options)
        rng = np.random.default_rng([seed, 18])
        for quad in scene.quads:
            quad.texture = green_texture(rng)
        scene.background = tuple(GREENS[rng.integers(len(GREENS))] / 255)
        if rng.random() < 0.25:  # a green sock over the whole foot
            foot = scene.meshes[0]
            sock = np.broadcast_to(GREENS[rng.integers(len(GREENS))] / 255 * rng.uniform(0.6, 1.0), foot.colors.shape)
            scene.meshes[0] = Mesh(foot.verts, foot.faces, sock.astype(np.float32), foot.normals)
        return scene, truth


def main() -> None:
    from photos import render_photo
    from render import Renderer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="4000000:4000008", help="start:stop")
    parser.add_argument("--long-side", type=int, default=640)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/green_renders")
    args = parser.parse_args()
    start, stop = (int(v) for v in args.seeds.split(":"))
    args.out.mkdir(parents=True, exist_ok=True)
    sampler, renderer, truth = GreenBackdrops(), Renderer(), {}
    for seed in range(start, stop):
        rgb, truth[f"{seed}.jpg"] = render_photo(seed, sampler, renderer, long_side=args.long_side, lateral_share=0.0)
        cv2.imwrite(str(args.out / f"{seed}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    (args.out / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
