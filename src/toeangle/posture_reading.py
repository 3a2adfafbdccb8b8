"""Landmarks -> posture: how the foot is placed, read from its points in the upright photo.

Photos are decoded upright (EXIF applied) and phones are held roughly level, so the photo's "down"
stands for gravity. Two slopes then say how the foot is placed (figures: the 46 annotated real side
views of bench/real/annotations.json; bench/posture.py prints them for the model's points):

- the first metatarsal (``first_metatarsal -> first_mtp``): on a foot standing heel down it declines
  toward the floor, -18 to -34 degrees (the first metatarsal declination angle, about 20 degrees in
  radiographs); lying, or with the leg raised, the forefoot points up (+36 to +106 degrees). Up on the
  balls of the feet it is steeper than about -45 degrees while the big toe stays on the floor.
- the big toe (``first_mtp -> hallux_tip``): resting on the floor it lies flat (-24 to +14 degrees);
  a toe lifted or held back by a helper rises above it.

Off the floor there is no floor to read the toe against, so the joint's own angle says it: at most
25 degrees is resting, from 40 degrees raised (the limits the training renders are labelled with).
What a photo cannot show is kept out: weight (a foot placed flat on the floor while seated reads as
standing, so "standing" is never surer than STANDING_MAX) and who raised the toe (a hand, an object or
the person: the toe is "raised" or "resting").
"""

from __future__ import annotations

import numpy as np

from .geometry import GeometryError, dorsiflexion_deg
from .schema import Landmarks, Posture

FLAT_METATARSAL_DEG = (-45.0, 20.0)
"""The first metatarsal's slope on a foot standing heel down (measured -34 to -18; margins for the model's points)."""
HEEL_RAISED_METATARSAL_DEG = -45.0
"""Steeper than this, with the big toe still on the floor: standing on the balls of the feet."""
TOE_ON_FLOOR_MAX_DEG = 12.0
"""A standing big toe sloping up by more than this is off the floor (measured resting: -24 to +14)."""
TOE_FLOOR_MIN_DEG = -25.0
"""Under a raised heel the toe stays on the floor: not steeper down than this."""
RESTING_MAX_DEG, RAISED_MIN_DEG = 25.0, 40.0
"""Off the floor, the joint angle of a resting toe and of a raised one (training/synth.py's labels)."""
SOFTNESS_DEG = 5.0
"""How many degrees across a limit the probability moves from 0.27 to 0.73: the points' own error."""
STANDING_MAX = 0.7
"""Weight on the foot does not show (a foot held level in the air, or placed flat while seated, looks the
same): a foot placed as a standing foot is reads as standing at most this surely."""
HIDDEN_BY_VIEW = frozenset({"off_axis", "outer_side", "foot_unreliable", "no_foot"})
"""Refusals that say the points do not show the foot's side: looking down at a standing foot makes it point
up the photo as a lying one does, so from such a view only a standing foot is read (bench/posture.py)."""


def posture_of(landmarks: Landmarks, reason_codes: tuple[str, ...] = ()) -> Posture | None:
    """The posture the points show, or None where they cannot show one: a refusal for the view (HIDDEN_BY_VIEW) or
    no heel, first_metatarsal, first_mtp and toe point."""
    posture = read_posture(landmarks)
    if posture is not None and HIDDEN_BY_VIEW.intersection(reason_codes) and posture.standing < 0.5:
        return None
    return posture


def read_posture(landmarks: Landmarks) -> Posture | None:
    """The posture the points show, or None without heel, first_metatarsal, first_mtp and a toe point."""
    points = {name: np.array([p.x, p.y]) for name, p in landmarks.present().items()}
    toe_end = points.get("hallux_tip", points.get("hallux_ip"))
    if toe_end is None or not {"heel", "first_metatarsal", "first_mtp"} <= points.keys():
        return None
    heel, metatarsal, joint = points["heel"], points["first_metatarsal"], points["first_mtp"]
    forward = 1.0 if joint[0] >= heel[0] else -1.0  # heel -> toe, left or right in the photo
    metatarsal_slope = _slope_deg(metatarsal, joint, forward)
    toe_slope = _slope_deg(joint, toe_end, forward)
    try:
        joint_angle = float(dorsiflexion_deg(heel, metatarsal, joint, points.get("hallux_ip", toe_end)))
    except GeometryError:
        return None

    flat = _above(metatarsal_slope, FLAT_METATARSAL_DEG[0]) * _below(metatarsal_slope, FLAT_METATARSAL_DEG[1])
    on_toes = _below(metatarsal_slope, HEEL_RAISED_METATARSAL_DEG) * _above(toe_slope, TOE_FLOOR_MIN_DEG)
    on_floor = flat + on_toes - flat * on_toes
    heel_raised = on_toes / max(flat + on_toes, 1e-9)
    # standing, the floor is the reference; off it, the joint angle (midway between the two labels)
    raised = on_floor * _above(toe_slope, TOE_ON_FLOOR_MAX_DEG) + (1 - on_floor) * _above(
        joint_angle, (RESTING_MAX_DEG + RAISED_MIN_DEG) / 2)
    return Posture(standing=_round(STANDING_MAX * on_floor), heel_raised=_round(heel_raised),
                   toe={"raised": _round(raised), "resting": _round(1 - _round(raised))})


def _slope_deg(start: np.ndarray, end: np.ndarray, forward: float) -> float:
    """Slope of start -> end against the photo's horizontal, positive when it rises toward the toes."""
    dx, dy = end - start
    return float(np.degrees(np.arctan2(-dy, dx * forward)))


def _above(value: float, limit: float) -> float:
    return float(1 / (1 + np.exp(-(value - limit) / SOFTNESS_DEG * 2)))


def _below(value: float, limit: float) -> float:
    return 1 - _above(value, limit)


def _round(p: float) -> float:
    return round(float(p), 3)
