"""The evaluation renderer (bench/evalrender/): its true landmarks land on the foot it draws, and training never imports it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIND = Path(os.environ.get("TOEANGLE_FIND_DIR", REPO.parent / "shared" / "find"))
MISSING = [name for name in ("scipy", "onnxruntime") if importlib.util.find_spec(name) is None]
SIDE_ON_SEEDS = (3, 8, 20)
"""Inner-side views within 20 degrees of side-on (standing, on a couch, heel raised), every landmark in frame."""


@pytest.fixture(scope="module")
def renderer():
    if MISSING:
        pytest.skip(f"the evaluation renderer needs {', '.join(MISSING)} (pip install -e '.[render]')")
    if not (FIND / "model.onnx").exists():
        pytest.skip(f"the FIND foot model is not at {FIND} (set TOEANGLE_FIND_DIR)")
    sys.path += [str(REPO / "training"), str(REPO / "bench")]  # appended: they shadow nothing
    from evalrender import EvalRenderer
    return EvalRenderer()


@pytest.mark.parametrize("seed", SIDE_ON_SEEDS)
def test_true_landmarks_fall_on_the_rendered_foot(renderer, seed):
    photo = renderer.photo(seed, long_side=256)
    truth = photo.truth
    rgb = cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert rgb.shape[:2] == (truth["height"], truth["width"]) == photo.foot_mask.shape
    assert truth["view"] == "medial" and truth["off_axis_deg"] < 20
    assert 0.01 < photo.foot_mask.mean() < 0.6
    off_foot = cv2.distanceTransform((~photo.foot_mask).astype(np.uint8), cv2.DIST_L2, 5)
    for name, (x, y) in truth["landmarks"].items():
        assert truth["visible"][name], name
        assert off_foot[int(round(y)), int(round(x))] <= 1.5, f"{name} lies off the foot"
    # the points are spread along the foot, not stacked on one pixel of it
    pts = np.array(list(truth["landmarks"].values()))
    assert np.hypot(*(pts[-1] - pts[0])) == pytest.approx(truth["foot_px"], abs=0.2)
    assert truth["foot_px"] > 0.3 * max(rgb.shape[:2])


def test_same_seed_same_photo(renderer):
    assert renderer.photo(SIDE_ON_SEEDS[0], long_side=200).jpeg == renderer.photo(SIDE_ON_SEEDS[0], long_side=200).jpeg


def test_training_never_imports_the_evaluation_renderer():
    for path in (REPO / "training").rglob("*.py"):
        assert "evalrender" not in path.read_text(), path
