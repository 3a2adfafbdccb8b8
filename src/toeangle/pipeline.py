"""photo -> decoded image -> landmarks -> angle -> verdict + routine: the one path every edge uses."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .angle import measure_angle
from .clinical import ClinicalRules, load_rules
from .decode import DecodedImage, decode_image
from .detectors import LandmarkDetector, ManualPoints, build_detector
from .detectors.manual import check_inside
from .errors import LandmarkError
from .posture import assess as assess_posture
from .posture_reading import posture_of
from .routine import prescribe
from .schema import Detection, ImageInfo, Landmarks, MeasurementResult, MeasureOptions, Quality, ViewCorrection
from .settings import Settings, get_settings
from .verdict import judge


@dataclass(frozen=True)
class Outcome:
    """A result plus the decoded picture it came from (for the overlay)."""

    result: MeasurementResult
    image: DecodedImage


class Measurer:
    """Holds what is expensive to build (detector models, rules); one per process or worker."""

    def __init__(self, settings: Settings | None = None, detector: LandmarkDetector | None = None,
                 rules: ClinicalRules | None = None):
        self.settings = settings or get_settings()
        self.detector = detector or build_detector(self.settings)
        self.rules = rules or load_rules(self.settings.clinical_file)

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(data, max_side=self.settings.decode_max_side, max_pixels=self.settings.max_pixels)

    def measure_photo(self, data: bytes, options: MeasureOptions | None = None,
                      points: Landmarks | None = None) -> Outcome:
        """Measure a photo; ``points`` (the user's own landmarks) replace the detector.

        Raises ImageDecodeError for bytes that are not a usable image and LandmarkError for
        given points that do not fit it; a photo the detector cannot read is a result with
        status "unmeasurable", not an error.
        """
        options = options or MeasureOptions()
        started = time.perf_counter()
        image = self.decode(data)
        decoded = time.perf_counter()
        detector = ManualPoints(points) if points is not None else self.detector
        detection = detector.detect(image)
        detected = time.perf_counter()
        timings = {"decode_ms": (decoded - started) * 1e3, "detect_ms": (detected - decoded) * 1e3}
        result = self.assess(detection, options, image.info, timings, strict=points is not None)
        return Outcome(result=result, image=image)

    def measure_landmarks(self, landmarks: Landmarks, options: MeasureOptions | None = None,
                          image: ImageInfo | None = None,
                          view_correction: ViewCorrection | None = None) -> MeasurementResult:
        """The same answer from points alone (the phone app's corrected landmarks).

        ``view_correction`` is the one the photo's first answer carried: points dragged on the same photo
        keep the same perspective, but not the model's own points' errors, so its moved-points part applies.
        The posture is read from the points as they are now. Points outside the stated image are a
        LandmarkError.
        """
        if image is not None:
            check_inside(landmarks, image.width, image.height)
        correction = None if view_correction is None else view_correction.for_moved_points()
        detection = Detection(landmarks=landmarks, detector="manual", quality=Quality.ok(),
                              view_correction=correction)
        return self.assess(detection, options or MeasureOptions(), image, {}, strict=True)

    def assess(self, detection: Detection, options: MeasureOptions, image: ImageInfo | None,
               timings: dict[str, float], strict: bool) -> MeasurementResult:
        """Landmarks -> angle -> verdict + routine; ``strict`` raises on unusable points instead of refusing.

        The posture the landmarks show is reported even when the photo is refused: it still tells the user
        which test the photo shows (posture_reading.posture_of says when it cannot). A test mismatch gets
        no routine: the angle of another test says nothing about what the toe needs.
        """
        started = time.perf_counter()
        seen = posture_of(detection.landmarks, detection.quality.reason_codes)
        posture = None if seen is None else assess_posture(seen, options.protocol, self.rules)
        base = dict(image=image, detector=detection.detector, landmarks=detection.landmarks, options=options,
                    posture=posture)
        if detection.quality.status != "ok":
            return MeasurementResult(status="unmeasurable", reasons=detection.quality.reasons,
                                     reason_codes=detection.quality.reason_codes, **base, timings_ms=_rounded(timings))
        try:
            measurement = measure_angle(detection.landmarks, detection.view_correction)
        except LandmarkError as exc:
            if strict:
                raise
            return MeasurementResult(status="unmeasurable", reasons=(str(exc),), reason_codes=("unusable_landmarks",),
                                     **base, timings_ms=_rounded(timings))
        verdict = judge(measurement.angle_deg, options, self.rules, measurement.uncertainty_deg, posture)
        routine = None if verdict.label == "test-mismatch" else prescribe(verdict, self.rules, pain=options.pain)
        timings["assess_ms"] = (time.perf_counter() - started) * 1e3
        return MeasurementResult(status="ok", **base, measurement=measurement, verdict=verdict, routine=routine,
                                 timings_ms=_rounded(timings))


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}
