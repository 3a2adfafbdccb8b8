"""What a person looks at besides the plot: the key frame with the photo overlay, and optionally the
whole clip annotated frame by frame.

Frames are not kept while a clip is measured (a minute of 1080p is gigabytes); the clip is decoded
again here, which costs a fraction of measuring it.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from ..angle import measure_angle
from ..decode import DecodedImage
from ..errors import LandmarkError
from ..overlay import draw_label, draw_overlay
from ..schema import REASON_CODES, FrameReading, Landmarks, MeasurementResult, VideoResult
from .clip import Clip, ClipLimits


def frame_result(result: VideoResult, reading: FrameReading) -> MeasurementResult:
    """One frame as a photo's answer (its landmarks and angle, the clip's verdict), for draw_overlay."""
    measurement = result.measurement if result.movement and reading.index == result.movement.key_frame else None
    if measurement is None and reading.status == "ok":
        try:
            measurement = measure_angle(reading.landmarks).model_copy(
                update={"angle_deg": reading.angle_deg, "uncertainty_deg": reading.uncertainty_deg})
        except LandmarkError:
            measurement = None
    if measurement is not None and result.verdict is not None:
        return MeasurementResult(status="ok", detector=result.detector, landmarks=reading.landmarks,
                                 measurement=measurement, verdict=result.verdict, routine=result.routine,
                                 options=result.options)
    codes = reading.reason_codes or result.reason_codes[:1]
    return MeasurementResult(status="unmeasurable", detector=result.detector, landmarks=reading.landmarks or Landmarks(),
                             reasons=tuple(REASON_CODES[c] for c in codes), reason_codes=codes, options=result.options)


def key_frame(data: bytes, result: VideoResult, limits: ClipLimits) -> tuple[DecodedImage, MeasurementResult]:
    """The movement's frame (or, for a refused clip, the first) and its answer."""
    index = result.movement.key_frame if result.movement else 0
    with Clip(data, limits) as clip:
        for frame in clip.frames():
            if frame.index == index:
                return frame.image, frame_result(result, result.frames[index])
    raise LandmarkError(f"frame {index} is no longer in the clip")


def write_annotated_clip(data: bytes, result: VideoResult, limits: ClipLimits, out: Path) -> None:
    """Every frame with its landmarks and angle, and the time and smoothed angle, as MP4 (MPEG-4 part 2,
    the encoder OpenCV's wheels carry; it plays in VLC and most players, not in every browser)."""
    writer = None
    try:
        with Clip(data, limits) as clip:
            for frame in clip.frames():
                reading = result.frames[frame.index]
                canvas = draw_overlay(frame.image, frame_result(result, reading))
                h, w = canvas.shape[:2]
                unit = max(h, w) / 800.0
                smoothed = "gap" if reading.smoothed_deg is None else f"curve {reading.smoothed_deg:.0f} deg"
                clip = f"  (the clip: {result.movement.angle_deg:.0f} deg, {result.verdict.label})" \
                    if result.movement is not None else ""  # the headline's verdict is the clip's, not the frame's
                draw_label(canvas, f"{reading.time_s:.2f} s  frame {reading.index}  {smoothed}{clip}",
                       (int(12 * unit), h - int(16 * unit)), 0.7 * unit, (255, 255, 255))
                if writer is None:
                    fps = result.video.fps or 30.0
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
