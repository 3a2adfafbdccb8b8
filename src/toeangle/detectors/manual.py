"""Landmarks the user gives (the phone app's dragged points, or --points on the CLI)."""

from __future__ import annotations

from ..decode import DecodedImage
from ..errors import LandmarkError
from ..schema import Detection, Landmarks, Quality


def check_inside(landmarks: Landmarks, width: int, height: int) -> None:
    """Points outside the photo are a client mistake (wrong coordinate system, usually)."""
    outside = [name for name, p in landmarks.present().items()
               if not (-0.5 <= p.x <= width - 0.5 and -0.5 <= p.y <= height - 0.5)]
    if outside:
        raise LandmarkError(
            f"landmarks outside the {width}x{height} photo: {', '.join(outside)} "
            "(coordinates are pixels of the original, upright photo)")


class ManualPoints:
    """A detector that 'finds' the points it was given, after checking they fit the photo."""

    name = "manual"

    def __init__(self, landmarks: Landmarks):
        self.landmarks = landmarks

    def detect(self, image: DecodedImage) -> Detection:
        check_inside(self.landmarks, image.original_width, image.original_height)
        return Detection(landmarks=self.landmarks, detector=self.name, quality=Quality.ok())
