"""clip -> frames -> tracked landmarks -> angle per frame -> smoothed curve -> movement -> verdict + routine.

The photo path's pieces do the work: the same detector (held by a Measurer), the same angle and
quality gate per frame (Measurer.assess), the same verdict and routine for the movement's angle.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from ..errors import OptionsError
from ..geometry import Z_90
from ..pipeline import Measurer
from ..routine import prescribe
from ..schema import FrameReading, Landmarks, MeasurementResult, MeasureOptions, Reason, VideoResult
from ..verdict import judge
from .clip import Clip, ClipLimits
from .curve import scatter, smooth
from .movement import find_movement, heel_off_mask
from .track import Tracker, keypoint_in

DECODE_AHEAD = 4
"""Frames decoded ahead in a thread while the model reads the current one."""
MIN_MEASURED_FRAMES = 5
"""Fewer measured frames than this make no curve."""


def check_clip_options(options: MeasureOptions) -> None:
    """`auto` reads the test from a photo's posture, a still; a clip's movement is named, never read."""
    if options.protocol == "auto":
        raise OptionsError("protocol auto reads the test from a photo's posture; a clip needs its movement named: "
                           "heel_raise (the default), walking or running")


class VideoMeasurer:
    def __init__(self, measurer: Measurer | None = None, limits: ClipLimits | None = None, one_crop: bool = True):
        self.measurer = measurer or Measurer()
        self.one_crop = one_crop
        self.follower = keypoint_in(self.measurer.detector)
        settings = self.measurer.settings
        self.limits = limits or ClipLimits(max_seconds=settings.video_max_seconds, max_frames=settings.video_max_frames,
                                           max_decoded_pixels=settings.video_max_decoded_pixels)

    def measure_clip(self, data: bytes, options: MeasureOptions | None = None,
                     points: Landmarks | None = None) -> VideoResult:
        """Measure a clip; ``points`` are the first frame's landmarks, followed from there.

        Raises VideoDecodeError for bytes that are not a usable clip (or over the limits),
        LandmarkError for given points that do not fit its frames and OptionsError for protocol
        auto; a clip whose foot cannot be read is a result with status "unmeasurable" and every
        frame's reasons.
        """
        options = options or MeasureOptions(protocol="heel_raise")
        check_clip_options(options)
        started = time.perf_counter()
        readings, measurements, detectors, followed = [], [], Counter(), 0
        with Clip(data, self.limits) as clip:
            tracker = Tracker(self.measurer.detector, self.follower, points, self.one_crop)
            for tracked in tracker.track(clip.frames(ahead=DECODE_AHEAD)):
                one = self.measurer.assess(tracked.detection, options, None, {}, strict=tracked.found_by == "given")
                readings.append(_reading(tracked.frame.index, tracked.frame.time_s, tracked.found_by, one))
                measurements.append(one.measurement)
                followed += tracked.found_by == "followed"
                if one.status == "ok":
                    detectors[one.detector] += 1
            info = clip.info
        raw = np.array([np.nan if r.angle_deg is None else r.angle_deg for r in readings])
        curve = smooth(np.array([r.time_s for r in readings]), raw)
        readings = [r.model_copy(update={"smoothed_deg": None if np.isnan(v) else round(float(v), 2)})
                    for r, v in zip(readings, curve)]
        base = dict(video=info, detector=detectors.most_common(1)[0][0] if detectors else self.measurer.detector.name,
                    options=options, frames_followed=followed)
        measured = sum(r.status == "ok" for r in readings)
        if measured < MIN_MEASURED_FRAMES:
            refusal = Reason("too_few_frames", f"only {measured} of {len(readings)} frames could be measured "
                             f"(at least {MIN_MEASURED_FRAMES} needed)")
            return self._refused(refusal, readings, base, started)
        if options.protocol == "heel_raise":
            off = heel_off_mask(readings, curve)
            readings = [r.model_copy(update={"heel_off": bool(off[i]) if r.status == "ok" else None})
                        for i, r in enumerate(readings)]
        movement, refusal = find_movement(readings, options.protocol)
        if refusal is not None:
            return self._refused(refusal, readings, base, started)
        key = readings[movement.key_frame]
        noise = Z_90 * scatter(raw, curve)  # one crop per frame: the copies' disagreement shows here, over time
        movement = movement.model_copy(update={"uncertainty_deg": round(float(np.hypot(key.uncertainty_deg or 0.0,
                                                                                        noise)), 2)})
        verdict = judge(movement.angle_deg, options, self.measurer.rules, movement.uncertainty_deg)
        return VideoResult(status="ok", **base, frames=tuple(readings), movement=movement,
                           measurement=measurements[movement.key_frame],
                           verdict=verdict, routine=prescribe(verdict, self.measurer.rules, pain=options.pain),
                           timings_ms=_timings(started, len(readings)))

    def _refused(self, refusal: Reason, readings, base, started) -> VideoResult:
        common = Counter(c for r in readings for c in r.reason_codes).most_common(3)
        codes = (refusal.code, *(c for c, _ in common if c != refusal.code))
        texts = (refusal.text, *(f"{n} frames: {c}" for c, n in common if c != refusal.code))
        return VideoResult(status="unmeasurable", reasons=texts, reason_codes=codes, **base, frames=tuple(readings),
                           timings_ms=_timings(started, len(readings)))


def _reading(index: int, time_s: float, found_by: str, one: MeasurementResult) -> FrameReading:
    m = one.measurement
    return FrameReading(index=index, time_s=round(time_s, 4), status=one.status, reason_codes=one.reason_codes,
                        found_by=found_by, angle_deg=None if m is None else m.angle_deg,
                        uncertainty_deg=None if m is None else m.uncertainty_deg, landmarks=one.landmarks)


def _timings(started: float, frames: int) -> dict[str, float]:
    seconds = time.perf_counter() - started
    return {"total_ms": round(seconds * 1e3, 1), "frames_per_s": round(frames / max(seconds, 1e-9), 1)}
