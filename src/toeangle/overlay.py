"""Result -> overlay picture: the photo with landmarks, both axes, the angle arc and the verdict.

Drawn on the decoded (possibly reduced) picture; encode it with decode.encode_png, which
writes pixels only, so no EXIF or GPS from the photo can reach the output.
"""

from __future__ import annotations

import cv2
import numpy as np

from .decode import DecodedImage
from .detectors.base import to_decoded
from .schema import MeasurementResult

VERDICT_COLOURS = {  # RGB
    "normal": (46, 160, 67),
    "borderline": (230, 160, 20),
    "restricted": (215, 48, 39),
    "test-mismatch": (150, 90, 220),
    None: (120, 120, 120),
}
AXIS_COLOUR = (255, 255, 255)
LOW_CONFIDENCE = 0.5


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(round(xy[0])), int(round(xy[1]))


def draw_label(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    thickness = max(1, int(round(scale * 2)))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = org
    cv2.rectangle(canvas, (x - 4, y - h - 6), (x + w + 4, y + base + 2), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_overlay(image: DecodedImage, result: MeasurementResult) -> np.ndarray:
    canvas = image.rgb.copy()
    h, w = canvas.shape[:2]
    unit = max(h, w) / 800.0
    thick = max(1, int(round(2 * unit)))
    label = result.verdict.label if result.verdict else None
    colour = VERDICT_COLOURS[label]
    points = {name: np.array(p.xy) for name, p in to_decoded(result.landmarks, image).present().items()}

    m = result.measurement
    if m is not None:
        met, mtp, end = points["first_metatarsal"], points["first_mtp"], points[m.phalanx_point]
        axis = (mtp - met) / np.linalg.norm(mtp - met)
        phalanx_len = np.linalg.norm(end - mtp)
        cv2.line(canvas, _pt(met), _pt(mtp + axis * phalanx_len * 1.2), AXIS_COLOUR, thick, cv2.LINE_AA)
        cv2.line(canvas, _pt(mtp), _pt(end), colour, thick + 1, cv2.LINE_AA)
        start = np.degrees(np.arctan2(axis[1], axis[0]))
        stop = np.degrees(np.arctan2(*(end - mtp)[::-1]))
        sweep = (stop - start + 180) % 360 - 180
        radius = max(8, int(0.7 * phalanx_len))
        cv2.ellipse(canvas, _pt(mtp), (radius, radius), 0, start, start + sweep, colour, thick, cv2.LINE_AA)
        mid = np.radians(start + sweep / 2)
        # Opposite the arc, on the sole side of the joint: no landmark lies there.
        angle_text_at = mtp - (radius + 30 * unit) * np.array([np.cos(mid), np.sin(mid)])

    for name, xy in points.items():
        confidence = result.landmarks.present()[name].confidence
        cv2.circle(canvas, _pt(xy), max(3, int(5 * unit)), (255, 255, 0), cv2.FILLED, cv2.LINE_AA)
        if confidence is not None and confidence < LOW_CONFIDENCE:
            cv2.circle(canvas, _pt(xy), max(6, int(11 * unit)), (255, 0, 0), thick, cv2.LINE_AA)
        draw_label(canvas, name, (_pt(xy)[0] + int(8 * unit), _pt(xy)[1] - int(8 * unit)), 0.45 * unit, (255, 255, 0))

    if m is not None:  # drawn after the landmark labels, so the value is never hidden under one
        draw_label(canvas, f"{m.angle_2d_deg:.0f} deg", _pt(angle_text_at), 0.7 * unit, colour)  # what the arc shows

    if m is not None and result.verdict is not None:
        headline = f"{m.angle_deg:.0f} deg"
        if m.uncertainty_deg is not None:
            headline += f" +/- {m.uncertainty_deg:.0f}"
        if m.view_correction is not None:
            headline += f" (lines {m.angle_2d_deg:.0f}, view {m.view_correction.degrees:+.0f})"
        headline += f"  {result.verdict.label}"
        if result.verdict.grade is not None:
            headline += f" (grade {result.verdict.grade.grade})"
        if result.options.protocol == "auto":
            headline += f" [{result.verdict.protocol}, auto]"
    else:
        headline = "unmeasurable: " + "; ".join(result.reasons)
    lines = _wrap(headline, canvas.shape[1] - int(24 * unit), 0.8 * unit)
    for i, line in enumerate(lines):
        draw_label(canvas, line, (int(12 * unit), int((36 + 34 * i) * unit)), 0.8 * unit, colour)
    banner = posture_banner(result)
    if banner:
        top = 36 + 34 * len(lines) + 8
        for i, line in enumerate(_wrap(banner, canvas.shape[1] - int(24 * unit), 0.65 * unit)):
            draw_label(canvas, line, (int(12 * unit), int((top + 28 * i) * unit)), 0.65 * unit,
                       VERDICT_COLOURS["test-mismatch"])
    return canvas


def posture_banner(result: MeasurementResult) -> str | None:
    """One short line under the headline when the photo may not show the test it is judged by."""
    p = result.posture
    if p is None or p.fit == "match":
        return None
    text = f"photo shows {p.seen}: {'not' if p.fit == 'mismatch' else 'perhaps not'} the {p.protocol} test"
    if p.suggested_protocol is not None:
        text += f"; suggested: {p.suggested_protocol}"
    return text


def _wrap(text: str, width_px: int, scale: float) -> list[str]:
    """Split the headline into lines that fit the picture (refusal reasons can be long)."""
    thickness = max(1, int(round(scale * 2)))
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and cv2.getTextSize(candidate, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] > width_px:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + [line] if line else lines
