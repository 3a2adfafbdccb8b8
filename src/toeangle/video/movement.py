"""The smoothed curve -> the movement the protocol asks about: a heel raise's peak, or each step's push-off.

Heel off the floor: in a heel raise the foot turns about the big-toe joint, so the metatarsal axis
(first_metatarsal -> first_mtp) tilts away from its standing direction by the heel's rise angle;
standing is taken where the angle is lowest (the toe least bent), and the heel counts as off when
the axis has turned more than HEEL_OFF_DEG from there. This needs no floor line and holds for a
camera that is not level.

Push-off: the toe bends furthest just before it leaves the ground and relaxes in swing, so each
step's push-off is a peak of the curve that rises at least MIN_PROMINENCE_DEG above the curve on
both sides within a step's time; peaks closer than MIN_STEP_S are one step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..schema import FrameReading, Movement, Reason, Step

HEEL_OFF_DEG = 5.0
MIN_PROMINENCE_DEG = 10.0
MIN_STEP_S = 0.3
"""Push-offs of one foot are a stride apart: about 1 s walking, 0.6-0.8 s running."""
STEP_SIDE_S = 0.6
"""How far either side of a push-off the curve must dip (swing after it, midstance before it)."""


def find_movement(frames: Sequence[FrameReading], protocol: str) -> tuple[Movement | None, Reason | None]:
    """The movement, or why it cannot be found (a Reason with a clip-level code); for heel_raise the frames'
    ``heel_off`` must be set (heel_off_mask)."""
    t = np.array([f.time_s for f in frames])
    y = np.array([np.nan if f.smoothed_deg is None else f.smoothed_deg for f in frames])
    if protocol in ("walking", "running"):
        return _push_offs(frames, t, y, protocol)
    heel_off = np.array([bool(f.heel_off) for f in frames]) if protocol == "heel_raise" else None
    return _peak(frames, t, y, protocol, heel_off)


def axis_direction_deg(frame: FrameReading) -> float:
    """The metatarsal axis's direction in the picture (degrees), NaN without both points."""
    points = frame.landmarks.present() if frame.landmarks is not None and frame.status == "ok" else {}
    if "first_metatarsal" not in points or "first_mtp" not in points:
        return float("nan")
    (x0, y0), (x1, y1) = points["first_metatarsal"].xy, points["first_mtp"].xy
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))


def heel_off_mask(frames: Sequence[FrameReading], smoothed: np.ndarray) -> np.ndarray:
    """Per frame: True when the metatarsal axis has turned more than HEEL_OFF_DEG from standing."""
    direction = np.array([axis_direction_deg(f) for f in frames])
    ok = np.isfinite(direction) & np.isfinite(smoothed)
    if not ok.any():
        return np.zeros(len(frames), bool)
    lowest = smoothed[ok].min()
    standing = ok & (smoothed <= lowest + HEEL_OFF_DEG)
    reference = np.degrees(np.angle(np.exp(1j * np.radians(direction[standing])).mean()))
    turn = np.abs((direction - reference + 180) % 360 - 180)
    return ok & (turn > HEEL_OFF_DEG)


def _peak(frames, t, y, protocol, heel_off) -> tuple[Movement | None, Reason | None]:
    measured = np.isfinite(y)
    notes = []
    candidates = measured if heel_off is None else measured & heel_off
    if heel_off is not None and not candidates.any():
        return None, Reason("no_heel_raise", "the heel was not seen leaving the floor (the metatarsal never turned "
                            f"more than {HEEL_OFF_DEG:g} degrees from standing): film from standing, rise as high as "
                            "you can, and come down")
    if heel_off is not None:
        notes.append(f"peak taken over the {int(candidates.sum())} frames with the heel off the floor")
    key = int(np.flatnonzero(candidates)[np.argmax(y[candidates])])
    return Movement(protocol=protocol, angle_deg=round(float(y[key]), 2), key_frame=frames[key].index,
                    key_time_s=round(float(t[key]), 4),
                    heel_off_frames=None if heel_off is None else int(heel_off.sum()), notes=tuple(notes)), None


def _push_offs(frames, t, y, protocol) -> tuple[Movement | None, Reason | None]:
    measured = np.flatnonzero(np.isfinite(y))
    peaks: list[int] = []
    for i in measured:
        near = measured[np.abs(t[measured] - t[i]) <= MIN_STEP_S]
        if y[i] < y[near].max() or (peaks and t[i] - t[peaks[-1]] < MIN_STEP_S):
            continue
        before = measured[(t[measured] < t[i]) & (t[measured] >= t[i] - STEP_SIDE_S)]
        after = measured[(t[measured] > t[i]) & (t[measured] <= t[i] + STEP_SIDE_S)]
        if len(before) and len(after) and min(y[before].min(), y[after].min()) <= y[i] - MIN_PROMINENCE_DEG:
            peaks.append(int(i))
    if not peaks:
        return None, Reason("no_push_off", "no push-off was seen: no step's angle rose and fell by "
                            f"{MIN_PROMINENCE_DEG:g} degrees with measured frames on both sides; film whole steps, "
                            "side-on, with the foot in view before and after it leaves the ground")
    angles = y[peaks]
    mean = float(angles.mean())
    key = peaks[int(np.argmin(np.abs(angles - mean)))]
    steps = tuple(Step(frame=frames[i].index, time_s=round(float(t[i]), 4), angle_deg=round(float(y[i]), 2))
                  for i in peaks)
    return Movement(protocol=protocol, angle_deg=round(mean, 2),
                    spread_deg=round(float(angles.std(ddof=1)), 2) if len(peaks) > 1 else None,
                    key_frame=frames[key].index, key_time_s=round(float(t[key]), 4), steps=steps,
                    notes=("push-off is each step's largest angle, reached just before the toe leaves the ground",)), None
