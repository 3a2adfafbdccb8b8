"""Render samples/: a dozen photo-like renders (normal and restricted, left and right, close-up and
lower leg, standing and held) with their ground truth in samples/ground_truth.json, and in
samples/refused/ photos the quality gate must turn down (the outer side of the foot), with theirs.

    python training/make_samples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from dataset import SAMPLES_START
from photos import render_photo
from render import Renderer
from synth import SceneSampler

OUT = Path(__file__).resolve().parents[1] / "samples"
WANTED = [  # (name, verdict, side, framing, setting or None)
    ("normal_right_closeup", "normal", "right", "closeup", None),
    ("normal_left_closeup", "normal", "left", "closeup", None),
    ("normal_right_leg", "normal", "right", "leg", None),
    ("normal_left_leg", "normal", "left", "leg", None),
    ("restricted_right_closeup", "restricted", "right", "closeup", None),
    ("restricted_left_closeup", "restricted", "left", "closeup", None),
    ("restricted_right_leg", "restricted", "right", "leg", None),
    ("restricted_left_leg", "restricted", "left", "leg", None),
    ("standing_toe_lift_right", None, "right", None, "standing"),
    ("standing_toe_lift_left", None, "left", None, "standing"),
    ("heel_raise_left", None, "left", None, "heel_raise"),
    ("held_by_hand_right", None, "right", None, "held"),
]
REFUSED = [  # (name, side, framing): side-on photos of the outer side, where the big-toe joint is hidden
    ("outer_side_right_leg", "right", "leg"),
    ("outer_side_left_closeup", "left", "closeup"),
]


def matches(truth: dict, verdict, side, framing, setting, view: str = "medial") -> bool:
    if truth["view"] != view or truth["off_axis_deg"] > 12 or not all(truth["in_frame"].values()):
        return False
    long_side = max(truth["width"], truth["height"])
    share = truth["foot_px"] / long_side
    angle = truth["angle_deg"]
    return ((verdict is None or (verdict == "normal" and angle >= 75) or (verdict == "restricted" and 10 <= angle <= 50))
            and truth["side"] == side
            and (framing is None or (framing == "closeup" and share >= 0.6) or (framing == "leg" and 0.3 <= share <= 0.5))
            and (setting is None or truth["setting"] == setting)
            and (setting != "held" or truth["hand"]))


def write(folder: Path, wanted: list, view: str, seed: int, sampler: SceneSampler, renderer: Renderer) -> int:
    """Render seeds from ``seed`` on until each wanted photo has a match; returns the next free seed."""
    folder.mkdir(exist_ok=True)
    truths = {}
    for name, *criteria in wanted:
        while True:
            rgb, truth = render_photo(seed, sampler, renderer, long_side=1024, off_axis_max=12.0,
                                      wide_view_share=0.0, lateral_share=float(view == "lateral"))
            seed += 1
            if matches(truth, *criteria, view=view):
                break
        cv2.imwrite(str(folder / f"{name}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        truths[f"{name}.jpg"] = truth
        print(name, truth["seed"], truth["angle_deg"], truth["setting"])
    (folder / "ground_truth.json").write_text(json.dumps(truths, indent=1) + "\n")
    return seed


def main() -> None:
    sampler, renderer = SceneSampler(), Renderer()
    seed = write(OUT, WANTED, "medial", SAMPLES_START, sampler, renderer)
    write(OUT / "refused", [(name, None, side, framing, None) for name, side, framing in REFUSED], "lateral", seed,
          sampler, renderer)


if __name__ == "__main__":
    main()
