"""Landmark sources behind one interface, chosen by configuration (TOEANGLE_DETECTOR)."""

from __future__ import annotations

from collections.abc import Callable

from ..settings import Settings
from .base import FirstUsable, LandmarkDetector
from .keypoint import KeypointDetector
from .manual import ManualPoints
from .markers import MarkerDetector
from .mediapipe_locator import MediaPipeFootLocator

DETECTORS: dict[str, Callable[[Settings], LandmarkDetector]] = {
    "markers": lambda settings: MarkerDetector(),
    "keypoint": lambda settings: KeypointDetector(settings.models_dir, locator_factory=MediaPipeFootLocator),
}
"""Every photo detector by its configuration name."""

AUTO_ORDER = ("markers", "keypoint")
"""What `auto` tries, in order: stickers are exact when present, the model works without them."""


def build_detector(settings: Settings) -> LandmarkDetector:
    if settings.detector == "auto":
        return FirstUsable([DETECTORS[name](settings) for name in AUTO_ORDER])
    return DETECTORS[settings.detector](settings)


__all__ = ["DETECTORS", "FirstUsable", "KeypointDetector", "LandmarkDetector", "ManualPoints", "MarkerDetector",
           "build_detector"]
