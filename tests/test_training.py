"""The training recipes run end to end on tiny data: every step of both stages (one epoch, a few
renders), the ONNX export, the card, and a detection through the runtime that ships."""

from __future__ import annotations

import sys

import numpy as np
from conftest import REPO

from toeangle.decode import decode_image
from toeangle.detectors.contract import INPUT_NAME, STAGES
from toeangle.detectors.keypoint import KeypointDetector

sys.path.insert(0, str(REPO / "training"))

from card import write_card  # noqa: E402
from dataset import render_set  # noqa: E402
from run_recipe import SETS, STAGE_RECIPES, read_toml, run_recipe  # noqa: E402


def test_the_recipes_train_export_and_load_through_the_runtime(tmp_path):
    data, models = tmp_path / "data", tmp_path / "models"
    render_set(range(0, 8), data / "tiny.npz", workers=1)
    render_set(range(900_000, 900_006), data / "val.npz", workers=1)
    for name in read_toml(SETS):  # every set the recipes name is the same few renders
        if name != "val":
            (data / f"{name}.npz").symlink_to(data / "tiny.npz")
    for path in STAGE_RECIPES:
        recipe = read_toml(path)
        for step in recipe["steps"]:  # one set, one epoch, one batch each
            step["data"] = step["data"][:1]
        record = run_recipe(recipe, data, models, overrides={"epochs": 1, "batch": 4})
        assert record["train_samples"] > 0 and np.isfinite(record["val"]["median_px"])
    card = write_card(models, sigma_scale=1.0)

    detector = KeypointDetector(models)  # refuses files that do not match the card's sha256 or the contract
    detection = detector.detect(decode_image((REPO / "samples" / "normal_right_closeup.jpg").read_bytes()))
    assert detection.detector == f"keypoint:{card['version']}"
    assert set(detection.landmarks.model_dump()) >= set(STAGES[1].keypoints)

    for stage, contract in STAGES.items():
        session = detector.model.sessions[f"stage{stage}"]
        size = contract.input_size
        inputs = np.random.default_rng(stage).uniform(0, 255, (3, 3, size, size)).astype(np.float32)
        for output, value in zip(contract.outputs, session.run(None, {INPUT_NAME: inputs})):
            low, high = output.bounds
            assert value.shape[0] == 3 and np.isfinite(value).all(), output.name
            assert (low is None or value.min() >= low) and (high is None or value.max() <= high), output.name
