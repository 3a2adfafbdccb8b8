"""Whole photo-like test images from seeds, with their truth: for the benchmark, calibration and samples/.

Seed ranges: dataset.py.
"""

from __future__ import annotations

import numpy as np
from dataset import photo_size
from foot import LANDMARKS
from render import Renderer
from synth import SceneSampler, degrade, project


def render_photo(seed: int, sampler: SceneSampler, renderer: Renderer, long_side: int = 1280,
                 **scene_options) -> tuple[np.ndarray, dict]:
    """An RGB photo and its truth: 2D landmarks (photo pixels), the 3D angle, side, view, off-axis angle."""
    rng = np.random.default_rng([seed, 11])
    scene, truth = sampler.sample(seed, **scene_options)
    size = photo_size(rng, long_side)
    rgb = degrade(renderer.render(scene, size), rng, strength=0.5)
    pts = project(scene, truth, size)
    inside = {k: bool(0 <= p[0] <= size[0] - 1 and 0 <= p[1] <= size[1] - 1) for k, p in pts.items()}
    return rgb, {
        "seed": seed, "width": size[0], "height": size[1],
        "landmarks": {k: [round(float(v), 2) for v in pts[k]] for k in LANDMARKS},
        "in_frame": inside, "angle_deg": round(truth.angle_deg, 2), "side": truth.side, "view": truth.view,
        "off_axis_deg": round(truth.off_axis_deg, 1), "setting": truth.setting, "skin": round(truth.skin, 2), "hand": truth.hand,
        "foot_px": round(float(np.hypot(*(pts["hallux_tip"] - pts["heel"]))), 1),
    }
