"""Render training sets: stage-1 whole photos (letterboxed) and stage-2 forefoot crops, from seeds.

The recipes (training/recipes/sets.toml) name each set by its seeds and options; run_recipe.py calls
render_set. Benchmark seeds start at 1_000_000 and are never rendered here for training.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from foot import LANDMARKS
from render import Renderer
from synth import SceneSampler, degrade, forefoot_matrix, posture_labels, project

from toeangle.detectors.contract import LETTERBOX, STAGES, letterbox_offset
from toeangle.detectors.crops import FOREFOOT, apply_affine

STAGE1_RENDER = 160
"""Stage 1's square is rendered this large and area-shrunk to the contract's input size when loaded."""
ASPECTS = [((3, 4), 0.35), ((4, 3), 0.3), ((1, 1), 0.1), ((9, 16), 0.15), ((16, 9), 0.1)]
# Seed ranges, never overlapping: training 0..<900_000, validation 900_000..<1_000_000,
# benchmark 1_000_000.., samples 2_000_000.., uncertainty calibration 3_000_000.. .
BENCH_START = 1_000_000
SAMPLES_START = 2_000_000
CALIBRATION_START = 3_000_000

_worker = {}


def _init(scene_options: dict, crop: int, crop_max_off_axis: float):
    _worker["renderer"] = Renderer()
    _worker["sampler"] = SceneSampler()
    _worker["scene_options"] = scene_options
    _worker["crop"] = crop
    _worker["crop_max_off_axis"] = crop_max_off_axis


def photo_size(rng: np.random.Generator, long_side: int) -> tuple[int, int]:
    (a, b) = ASPECTS[rng.choice(len(ASPECTS), p=[p for _, p in ASPECTS])][0]
    return (long_side, round(long_side * b / a)) if a >= b else (round(long_side * a / b), long_side)


def make_sample(seed: int) -> dict:
    renderer, sampler = _worker["renderer"], _worker["sampler"]
    rng = np.random.default_rng([seed, 7])
    scene, truth = sampler.sample(seed, **_worker["scene_options"])
    negative = rng.random() < 0.05
    if negative:  # no foot at all: walls, floors, clutter
        scene.meshes = scene.meshes[-1:] if rng.random() < 0.3 else []
        scene.quads = [quad for quad in scene.quads if not quad.multiply]  # nor the foot's shadow (realism)
    size = photo_size(rng, STAGE1_RENDER)
    img = degrade(renderer.render(scene, size), rng)
    canvas = np.full((STAGE1_RENDER, STAGE1_RENDER, 3), LETTERBOX, np.uint8)
    ox, oy = letterbox_offset(size, STAGE1_RENDER)
    canvas[oy:oy + size[1], ox:ox + size[0]] = img
    pts = project(scene, truth, size)
    xy = np.stack([pts[k] for k in LANDMARKS])
    in_frame = (xy[:, 0] >= 0) & (xy[:, 0] <= size[0] - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= size[1] - 1)
    side = _worker["crop"]
    standing, heel_raised, toe_state = posture_labels(truth)
    out = dict(stage1=canvas, xy1=(xy + [ox, oy]).astype(np.float32), in_frame=in_frame & (not negative),
               presence=not negative, off_axis=truth.off_axis_deg, angle=truth.angle_deg,
               lateral=truth.view == "lateral", standing=standing and not negative,
               heel_raised=heel_raised and not negative, toe_state=toe_state if not negative else -1, stage2_ok=False,
               stage2=np.zeros((side, side, 3), np.uint8), xy2=np.zeros((4, 2), np.float32))
    if not negative and truth.off_axis_deg <= _worker["crop_max_off_axis"]:
        big = (size[0] * 10, size[1] * 10)  # a phone-sized photo of the same camera
        pts_big = project(scene, truth, big)
        matrix = forefoot_matrix(pts_big, side, rng, jitter=0.07)
        crop = renderer.render(scene, (side, side), similarity_px=matrix, src_size=big)
        out.update(stage2=degrade(crop, rng, strength=0.7), stage2_ok=True,
                   xy2=apply_affine(matrix, np.stack([pts_big[k] for k in FOREFOOT])).astype(np.float32))
    return out


def _make_chunk(seeds: range) -> list[dict]:
    return [make_sample(seed) for seed in seeds]


def render_all(seeds: range, workers: int, init_args: tuple, chunk: int = 64) -> list[dict]:
    """Render every seed in worker processes, in order, surviving crashed workers.

    Mesa occasionally segfaults a worker (seen once in ~30,000 renders); a plain Pool then waits
    forever for the lost task. Here the broken pool is replaced and the unfinished chunks rerun:
    every sample depends only on its seed, so the result is the same.
    """
    chunks = {c.start: c for c in (seeds[i:i + chunk] for i in range(0, len(seeds), chunk))}
    done: dict[int, list[dict]] = {}
    while len(done) < len(chunks):
        try:
            with ProcessPoolExecutor(workers, mp.get_context("spawn"), initializer=_init, initargs=init_args) as pool:
                futures = {pool.submit(_make_chunk, c): key for key, c in chunks.items() if key not in done}
                for future, key in futures.items():
                    done[key] = future.result()
        except BrokenProcessPool:
            print(f"a render worker crashed; rerunning the {len(chunks) - len(done)} unfinished chunks", flush=True)
    return [sample for key in sorted(done) for sample in done[key]]


def render_set(seeds: range, out: Path, workers: int = 2, wide_share: float = 0.12, top_down_share: float = 0.0,
               lateral_share: float = 0.15, crop: int = STAGES[2].input_size, crop_max_off_axis: float = 45.0,
               realism: float = 0.0) -> None:
    """Render one set to ``out`` (.npz). ``wide_share``: share of views 30-90 deg off side-on, ``top_down_share``:
    of those, the share seen from above; ``lateral_share``: views of the foot's outer side; ``crop``: side of
    the stage-2 crops in pixels (shrunk to the contract's size when loaded); ``crop_max_off_axis``: cut stage-2
    crops of views up to this far from side-on (90: every view, for the off-axis head); ``realism`` (0..1): how
    often the details of real photos appear (training/realism.py: skin, clothes, floors, shadows, light, the phone)."""
    if seeds.stop > BENCH_START:
        raise ValueError("seeds from 1_000_000 on are the benchmark's")
    started = time.time()
    options = dict(wide_view_share=wide_share, top_down_share=top_down_share, lateral_share=lateral_share)
    if realism:
        options["realism"] = realism
    samples = render_all(seeds, workers, (options, crop, crop_max_off_axis))
    arrays = {k: np.stack([s[k] for s in samples]) for k in samples[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, seeds=np.arange(seeds.start, seeds.stop), **arrays)
    print(f"{len(samples)} samples in {time.time() - started:.0f} s -> {out}", flush=True)
