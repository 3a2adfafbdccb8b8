"""The one interface every landmark source implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..decode import DecodedImage
from ..schema import Detection, Landmarks


@runtime_checkable
class LandmarkDetector(Protocol):
    """Finds the five landmarks in a decoded photo.

    Implementations return landmarks in the ORIGINAL photo's pixels (use
    ``to_original``) and a Quality that refuses photos they cannot read.
    """

    name: str

    def detect(self, image: DecodedImage) -> Detection: ...


def to_original(landmarks: Landmarks, image: DecodedImage) -> Landmarks:
    """Decoded-image pixels -> original-photo pixels (pixel centres map through the scale)."""
    sx, sy = image.scale
    return Landmarks(**{
        name: p.model_copy(update={
            "x": (p.x + 0.5) * sx - 0.5, "y": (p.y + 0.5) * sy - 0.5,
            "sigma_px": None if p.sigma_px is None else p.sigma_px * (sx + sy) / 2,
        })
        for name, p in landmarks.present().items()
    })


def to_decoded(landmarks: Landmarks, image: DecodedImage) -> Landmarks:
    """The inverse of to_original, for drawing on the decoded picture."""
    sx, sy = image.scale
    return Landmarks(**{
        name: p.model_copy(update={"x": (p.x + 0.5) / sx - 0.5, "y": (p.y + 0.5) / sy - 0.5})
        for name, p in landmarks.present().items()
    })


class FirstUsable:
    """Tries detectors in order and keeps the first that can measure (e.g. markers, then the model)."""

    def __init__(self, detectors: list[LandmarkDetector]):
        if not detectors:
            raise ValueError("FirstUsable needs at least one detector")
        self.detectors = detectors
        self.name = "+".join(d.name for d in detectors)

    def detect(self, image: DecodedImage) -> Detection:
        refusals = []
        for detector in self.detectors:
            detection = detector.detect(image)
            if detection.quality.status == "ok":
                return detection
            refusals.append(detection)
        # Nothing could measure: the last (most general) detector's reasons are the useful ones.
        return refusals[-1]
