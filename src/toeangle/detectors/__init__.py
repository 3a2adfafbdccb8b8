"""Landmark sources behind one interface, chosen by configuration (TOEANGLE_DETECTOR)."""

from __future__ import annotations

from collections.abc import Callable

from ..settings import Settings
from .base import FirstUsable, LandmarkDetector
from .keypoint import KeypointDetector, KeypointModel
from .manual import ManualPoints
from .markers import FootFinder, MarkerDetector
from .mediapipe_locator import MediaPipeFootLocator


def _markers(model: KeypointModel) -> MarkerDetector:
    """Stickers count only on the foot the keypoint model's first stage finds."""
    return MarkerDetector(FootFinder(model.locate, model.gate.min_presence))


def _keypoint(settings: Settings) -> KeypointDetector:
    return KeypointDetector(settings.models_dir, locator_factory=MediaPipeFootLocator)


DETECTORS: dict[str, Callable[[Settings], LandmarkDetector]] = {
    "markers": lambda settings: _markers(KeypointModel(settings.models_dir)),
    "keypoint": _keypoint,
}
"""Every photo detector by its configuration name."""


def build_detector(settings: Settings) -> LandmarkDetector:
    """`auto`: stickers are exact when present, the model works without them; both share one model."""
    if settings.detector == "auto":
        keypoint = _keypoint(settings)
        return FirstUsable([_markers(keypoint.model), keypoint])
    return DETECTORS[settings.detector](settings)


__all__ = ["DETECTORS", "FirstUsable", "FootFinder", "KeypointDetector", "LandmarkDetector", "ManualPoints",
           "MarkerDetector", "build_detector"]
