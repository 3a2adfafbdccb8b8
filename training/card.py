"""Write keypoints.json beside the ONNX files: what the runtime needs to trust them (sha256,
uncertainty scale, quality-gate limits, the runtime's settings for each stage) plus the
validation figures of the steps that made them. Input sizes, names and the letterbox value are
the contract's (src/toeangle/detectors/contract.py), not the card's. run_recipe.py writes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

VERSION = "v11"

GATE = {
    "min_presence": 0.9,  # v9: 0.5 until 2026-12-04; real feet read >= 0.927, non-foot pictures 0.31-0.99 (EXPERIMENTS.md)
    "min_in_frame": 0.5,
    "max_disagreement": 0.15,  # foot lengths: stage 1's copies scatter more on no foot or a guess (v10; v9 0.2)
    "max_off_axis_deg": 30.0,  # on stage 1's estimate and (v8) on stage 2's off-axis head, both
    "min_foot_px": 150.0,
    "min_luminance": 15.0,
    "max_luminance": 240.0,
    "min_sharpness": 1.0,
    "max_uncertainty_deg": 14.0,
    "min_heel_side_margin": 55.0,  # log-odds (v7; v6 40, v5 50): the low end of the calibration renders' plateau
    "max_lateral": 0.5,
}

REFINE_MARGIN = 0.5
"""Stage 1 looks again at a crop around its own points with this much margin (in foot lengths).
On 500 calibration renders within 20 deg of side-on: heel error median 3.8% -> 2.8% of the foot
length, angle MAE 2.41 -> 2.27, p95 6.6 -> 6.1; a margin of 0.2 cut off a heel and flipped a sign."""

TEST_TIME_SHIFTS_PX = [[0, 0], [3, 0], [-3, 0], [0, 3], [0, -3]]
"""Stage 2 also runs on its crop moved by these (crop pixels) and averages: on 500 calibration
renders within 20 deg of side-on (v3, same gate) the angle MAE fell from 2.98 to 2.41 deg and
the p95 from 7.8 to 6.6, for about 10 ms more per photo (models/EXPERIMENTS.md)."""


SIGMA_SCALE_TOLERANCE = 0.1
"""A rerun's calibrated sigma scale may differ from the shipped one by this share (v6 -> v7 -> v8 moved
it by 7% and 5%, with the network or the gate changed)."""


def write_card(models: Path, sigma_scale: float, max_uncertainty_deg: float | None = None) -> dict:
    """keypoints.json for the ONNX files and stage<N>_train.json records in ``models``."""
    card = {"version": VERSION, "uncertainty": {"sigma_scale": sigma_scale}, "gate": dict(GATE)}
    if max_uncertainty_deg:  # while calibrating: measure every photo, however uncertain
        card["gate"]["max_uncertainty_deg"] = max_uncertainty_deg
    for stage in (1, 2):
        onnx = models / f"foot_stage{stage}.onnx"
        train = json.loads((models / f"stage{stage}_train.json").read_text())
        card[f"stage{stage}"] = {"file": onnx.name, "sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(),
                                 "training": {k: train[k] for k in ("train_samples", "epochs_run", "seconds", "val")}}
    card["stage1"]["refine_margin"] = REFINE_MARGIN
    card["stage2"]["test_time_shifts_px"] = TEST_TIME_SHIFTS_PX
    (models / "keypoints.json").write_text(json.dumps(card, indent=1) + "\n")
    return card
