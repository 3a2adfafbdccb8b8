"""Frames -> landmarks per frame: the foot is found once (stage 1 and 2), then followed.

Stage 1 (the whole frame, in eight turned and mirrored copies, twice) is most of a photo's cost;
from one frame to the next the foot moves little, so the previous frame's points set the forefoot
crop and only stage 2 runs (KeypointDetector.follow). When following fails because the foot left
the crop (or the view, or the points, became unreadable), the next search is of the whole frame.
Frames that are only blurred, dark or overexposed keep the last good points to follow from: the
foot has not gone, the frame is just unreadable. Skin markers, being exact, are looked for in
every frame while they are found.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..detectors import KeypointDetector, LandmarkDetector, ManualPoints, MarkerDetector
from ..schema import Detection, Landmarks
from .clip import Frame

FOLLOW_NEEDS = ("heel", "first_metatarsal", "first_mtp")
PICTURE_ONLY = frozenset({"blurred", "too_dark", "overexposed"})
"""Refusals about the frame, not the foot's place: the foot is still where it was."""
SEARCH_EVERY_AFTER = 10
"""After this many frames searched in vain in a row, only every SEARCH_EVERY-th frame is searched (the
others are gaps, ``found_by="skipped"``): a clip with no readable foot costs a fifth, not the whole
search on every frame (half a second each when MediaPipe looks for a small foot)."""
SEARCH_EVERY = 5


@dataclass(frozen=True)
class Tracked:
    frame: Frame
    detection: Detection
    found_by: str  # detector | followed | given


def part_of(detector: LandmarkDetector, kind: type):
    """The detector of ``kind`` among the detector's parts (``auto`` is markers, then the model), or None."""
    parts = getattr(detector, "detectors", [detector])
    return next((d for d in parts if isinstance(d, kind)), None)


def keypoint_in(detector: LandmarkDetector) -> KeypointDetector | None:
    return part_of(detector, KeypointDetector)


class Tracker:
    """``detector`` searches a whole frame; ``follower`` (anything with KeypointDetector.follow) follows
    the foot from the previous frame's points; without one, every frame is searched."""

    def __init__(self, detector: LandmarkDetector, follower: KeypointDetector | None, given: Landmarks | None = None,
                 one_crop: bool = True):
        self.detector, self.follower, self.given = detector, follower, given
        self.markers = part_of(detector, MarkerDetector)
        self.one_crop = one_crop
        """Follow with one shifted copy of the crop per frame, a different one each frame (KeypointDetector.follow)."""

    def track(self, frames: Iterable[Frame]) -> Iterator[Tracked]:
        previous: Landmarks | None = None  # what the next frame follows from; None: search the whole frame
        stickers: Landmarks | None = None  # the last frame's skin markers, when it had them
        misses, last_refusal = 0, None  # searches in vain in a row, and the last one's answer
        for frame in frames:
            if frame.index == 0 and self.given is not None:
                detection, found_by = ManualPoints(self.given).detect(frame.image), "given"
            elif previous is None and misses >= SEARCH_EVERY_AFTER and (misses - SEARCH_EVERY_AFTER) % SEARCH_EVERY:
                detection, found_by = last_refusal, "skipped"
                misses += 1
            elif stickers is not None:
                detection, found_by = self.markers.follow(frame.image, stickers), "followed"
                if detection.quality.status != "ok":
                    detection, found_by = self.detector.detect(frame.image), "detector"
            elif previous is not None:
                shift = frame.index if self.one_crop else None
                detection, found_by = self.follower.follow(frame.image, previous, shift), "followed"
                if detection.quality.status != "ok" and not set(detection.quality.reason_codes) <= PICTURE_ONLY:
                    detection, found_by = self.detector.detect(frame.image), "detector"
            else:
                detection, found_by = self.detector.detect(frame.image), "detector"
            if detection.quality.status == "ok":
                from_markers = detection.detector.startswith("markers")
                stickers = detection.landmarks if from_markers and self.markers is not None else None
                followable = self.follower is not None and not from_markers \
                    and all(n in detection.landmarks.present() for n in FOLLOW_NEEDS)
                previous = detection.landmarks if followable else None
                misses = 0
            elif found_by == "detector":
                previous, stickers, last_refusal = None, None, detection
                misses += 1
            yield Tracked(frame, detection, found_by)
