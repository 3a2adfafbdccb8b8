"""Landmarks -> Measurement: the geometry core applied to the Landmarks noun."""

from __future__ import annotations

import numpy as np

from .errors import LandmarkError
from .geometry import Z_90, GeometryError, angle_sigma_deg, dorsiflexion_deg
from .schema import Landmarks, Measurement, ViewCorrection

REQUIRED = ("first_metatarsal", "first_mtp")
MIN_SEGMENT_PX = 1.0
"""Axes shorter than a pixel have no direction worth measuring."""


def measure_angle(landmarks: Landmarks, correction: ViewCorrection | None = None) -> Measurement:
    """The hallux dorsiflexion angle, with a ~90% uncertainty when the points carry sigmas.

    ``correction`` (from the keypoint model) turns the angle between the drawn points into the
    foot's own angle; its uncertainty adds to the points' in quadrature.

    Uses hallux_ip for the phalanx axis; falls back to hallux_tip (and says so) because a
    line to the tip overstates MTP motion when the IP joint compensates. Without a heel
    the sign cannot be checked: the angle is reported as dorsiflexion, with a note.
    """
    points = landmarks.present()
    missing = [name for name in REQUIRED if name not in points]
    end_name = "hallux_ip" if "hallux_ip" in points else "hallux_tip" if "hallux_tip" in points else None
    if end_name is None:
        missing.append("hallux_ip (or hallux_tip)")
    if missing:
        raise LandmarkError(f"missing landmarks: {', '.join(missing)}")

    notes = []
    if end_name == "hallux_tip":
        notes.append("hallux_ip missing: the phalanx axis runs to the toe tip, which overstates the angle "
                     "when the IP joint is bent")
    metatarsal, mtp, end = (np.array(points[n].xy) for n in ("first_metatarsal", "first_mtp", end_name))
    if min(np.hypot(*(mtp - metatarsal)), np.hypot(*(end - mtp))) < MIN_SEGMENT_PX:
        raise LandmarkError(f"first_metatarsal, first_mtp and {end_name} must be distinct points, at least "
                            f"{MIN_SEGMENT_PX:g} px apart")
    if "heel" in points:
        heel = np.array(points["heel"].xy)
    else:
        notes.append("no heel point: the sign could not be checked, so the toe is taken as bent up (dorsiflexion)")
        axis = mtp - metatarsal
        normal = np.array([-axis[1], axis[0]])
        # Put a stand-in heel on the side opposite the phalanx turn, which reads as dorsiflexion.
        turn = np.cross(axis, end - mtp)
        heel = metatarsal - axis + (normal if turn < 0 else -normal)
    try:
        angle_2d = float(dorsiflexion_deg(heel, metatarsal, mtp, end))
        sigmas = [points[n].sigma_px for n in ("first_metatarsal", "first_mtp", end_name)]
        sigma = None
        if all(s is not None for s in sigmas):
            sigma = float(angle_sigma_deg(heel, metatarsal, mtp, end, sigmas))
    except GeometryError as exc:
        raise LandmarkError(str(exc)) from None
    angle = angle_2d
    if correction is not None:
        angle += correction.degrees
        sigma = None if sigma is None else float(np.hypot(sigma, correction.sigma_deg))
    return Measurement(angle_deg=round(angle, 2), angle_2d_deg=round(angle_2d, 2),
                       uncertainty_deg=None if sigma is None else round(Z_90 * sigma, 2),
                       view_correction=correction, phalanx_point=end_name, notes=tuple(notes))
