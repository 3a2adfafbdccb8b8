"""Finds the foot in a full-body photo with MediaPipe BlazePose (heel, ankle and toe-tip landmarks).

BlazePose needs a whole body and has no big-toe joint, so it only says where to look; the
keypoint model does the measuring. mediapipe==0.10.21 ships the full pose model in its wheel
(model_complexity=1 runs offline). Its graph is not thread-safe: one locator per process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# BlazePose indices: (ankle, heel, foot_index) for the left and the right foot.
FEET = {"left": (27, 29, 31), "right": (28, 30, 32)}
MIN_VISIBILITY = 0.5
BOX_FOOT_LENGTHS = 2.2
"""Side of the square crop around the foot, in heel-to-toe lengths (room for a bent toe)."""


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """fd 2 goes to /dev/null meanwhile: MediaPipe's and TFLite's C++ code writes warnings there
    ("W0000 ... inference_feedback_manager.cc", "INFO: Created TensorFlow Lite XNNPACK delegate")
    while its graph is built and first run, and absl ignores GLOG_minloglevel before
    absl::InitializeLog. They would clutter the CLI and break the service's JSON-lines logs."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class MediaPipeFootLocator:
    def __init__(self):
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with native_stderr_silenced():
            import mediapipe as mp

            self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                                enable_segmentation=False)
        self._has_run = False

    def locate(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """A square box (x0, y0, x1, y1) around the most visible, most side-on foot, or None."""
        if self._has_run:
            result = self._pose.process(np.ascontiguousarray(rgb))
        else:  # the graph's calculators start (and log) on the first image
            with native_stderr_silenced():
                result = self._pose.process(np.ascontiguousarray(rgb))
            self._has_run = True
        if result.pose_landmarks is None:
            return None
        h, w = rgb.shape[:2]
        marks = result.pose_landmarks.landmark
        best = None
        for ankle, heel, toe in FEET.values():
            vis = min(marks[i].visibility for i in (ankle, heel, toe))
            if vis < MIN_VISIBILITY:
                continue
            heel_xy = np.array([marks[heel].x * w, marks[heel].y * h])
            toe_xy = np.array([marks[toe].x * w, marks[toe].y * h])
            length = float(np.hypot(*(toe_xy - heel_xy)))
            score = vis * length  # a side-on foot looks longest
            if length > 4 and (best is None or score > best[0]):
                best = (score, (heel_xy + toe_xy) / 2, length)
        if best is None:
            return None
        _, centre, length = best
        half = BOX_FOOT_LENGTHS * length / 2
        x0, y0 = int(max(0, centre[0] - half)), int(max(0, centre[1] - half))
        x1, y1 = int(min(w, centre[0] + half)), int(min(h, centre[1] + half))
        return (x0, y0, x1, y1) if x1 - x0 > 8 and y1 - y0 > 8 else None
