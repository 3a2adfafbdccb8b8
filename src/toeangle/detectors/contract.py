"""The keypoint networks' input/output contract: written once, read by training (export, crops,
letterbox) and by the runtime (detectors/keypoint.py), so neither side can drift from the other.

Input (both stages): one tensor named ``image``, float32 [N, 3, S, S], RGB channel order, values
0-255 as decoded (no normalisation outside the graph: each network scales its input itself, so a
new backbone brings its own normalisation inside its ONNX file). S is the stage's ``input_size``.

Coordinates: (x, y) in the input's pixels, x to the right and y down, a pixel's centre at integer
coordinates (the top-left pixel's centre is (0, 0), its top-left corner (-0.5, -0.5)).

Stage 1 sees the whole photo shrunk to fit S x S (area-averaged), centred (``letterbox_offset``)
on a square of grey ``LETTERBOX``. Stage 2 sees the forefoot crop of ``crops.forefoot_crop``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..schema import LANDMARK_NAMES
from .crops import FOREFOOT

INPUT_NAME = "image"
LETTERBOX = 127
"""Grey value of stage 1's square outside the photo."""


@dataclass(frozen=True)
class Output:
    name: str
    shape: str  # N: batch, K: the stage's keypoints
    meaning: str
    bounds: tuple[float | None, float | None] = (None, None)  # what the graph guarantees; None: open


DEGREES_PER_UNIT = 10.0
"""The Gaussian heads learn degrees in tens (value and sigma)."""
LOG_SIGMA_RANGE = (-3, 4)
"""Their log-sigma is clamped to this, so a sigma is DEGREES_PER_UNIT * exp(it)."""
SIGMA_BOUNDS_DEG = tuple(DEGREES_PER_UNIT * math.exp(v) for v in LOG_SIGMA_RANGE)
STAGE1_OFF_AXIS_MAX_DEG = 90.0
"""Stage 1's view estimate is a sigmoid scaled to 0..this."""


@dataclass(frozen=True)
class StageContract:
    input_size: int
    keypoints: tuple[str, ...]
    outputs: tuple[Output, ...]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


_POINTS = (Output("coords", "[N, K, 2]", "keypoints in input pixels (soft-argmax of the heatmaps)"),
           Output("spread", "[N, K]", "each heatmap's standard deviation, input pixels (uncalibrated)", (0.0, None)))

STAGE1 = StageContract(
    input_size=128,
    keypoints=LANDMARK_NAMES,
    outputs=_POINTS + (
        Output("presence", "[N]", "probability that a foot is in the photo", (0.0, 1.0)),
        Output("in_frame", "[N, K]", "probability that each landmark lies inside the photo", (0.0, 1.0)),
        Output("off_axis", "[N]", "degrees the view is away from side-on", (0.0, STAGE1_OFF_AXIS_MAX_DEG)),
    ))

STAGE2 = StageContract(
    input_size=128,
    keypoints=FOREFOOT,
    outputs=_POINTS + (
        Output("correction", "[N]", "3D angle minus the angle the found points draw, degrees"),
        Output("correction_sigma", "[N]", "its sigma, degrees (uncalibrated)", SIGMA_BOUNDS_DEG),
        Output("sole_up_logit", "[N]", "log-odds that the crop shows the sole on top (a logit: the runtime "
               "compares it across crops, and its sigmoid saturates at 1 in float32)"),
        Output("lateral", "[N]", "probability that the photo shows the foot's outer side", (0.0, 1.0)),
        Output("perspective", "[N]", "3D angle minus the angle the true points draw (points moved by hand), degrees"),
        Output("perspective_sigma", "[N]", "its sigma, degrees (uncalibrated)", SIGMA_BOUNDS_DEG),
        Output("off_axis", "[N]", "degrees the view is away from side-on, from the forefoot crop"),
    ))

STAGES = {1: STAGE1, 2: STAGE2}


def letterbox_offset(size: tuple[int, int], canvas: int) -> tuple[int, int]:
    """Where a (width, height) image sits, centred, on stage 1's square canvas."""
    return (canvas - size[0]) // 2, (canvas - size[1]) // 2


def to_input(rgbs: np.ndarray) -> np.ndarray:
    """[N, H, W, 3] uint8 RGB -> the networks' [N, 3, H, W] float32 input."""
    return np.ascontiguousarray(rgbs.transpose(0, 3, 1, 2), dtype=np.float32)
