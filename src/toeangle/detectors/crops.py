"""The forefoot crop both training and inference use: one definition, so they cannot drift apart.

The crop is rotation- and mirror-normalised: the metatarsal axis points right (+x) and the
plantar side (where the heel is) points down (+y), so the second stage sees every photo,
left or right foot, sideways or upside down, the same way round.
"""

from __future__ import annotations

import numpy as np

FOREFOOT = ("first_metatarsal", "first_mtp", "hallux_ip", "hallux_tip")
"""The second stage's outputs, in order: the points that set the angle."""

CROP_SIDE_METATARSALS = 2.7
"""Crop side in metatarsal-axis lengths: holds first_metatarsal and a toe bent from -20 to +100 deg."""
CROP_CENTRE = (0.05, -0.3)
"""Crop centre from first_mtp, in metatarsal lengths along the axis and toward the plantar side."""


def forefoot_crop(heel: np.ndarray, metatarsal: np.ndarray, mtp: np.ndarray, out_size: int) -> np.ndarray:
    """2x3 affine (similarity, possibly mirrored) from photo pixels to crop pixels."""
    heel, metatarsal, mtp = (np.asarray(p, np.float64) for p in (heel, metatarsal, mtp))
    axis = mtp - metatarsal
    length = float(np.hypot(*axis))
    if length < 1e-6:
        raise ValueError("metatarsal axis has no length")
    u = axis / length
    n = np.array([-u[1], u[0]])
    if np.dot(heel - metatarsal, n) < 0:  # plantar side must be +y in the crop
        n = -n
    centre = mtp + length * (CROP_CENTRE[0] * u + CROP_CENTRE[1] * n)
    scale = out_size / (CROP_SIDE_METATARSALS * length)
    rot = np.stack([u, n]) * scale
    offset = out_size / 2 - 0.5 - rot @ centre
    return np.hstack([rot, offset[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine, in closed form (LAPACK for a 3x3 cost more than the rest of the crop)."""
    (a, b, tx), (c, d, ty) = np.asarray(matrix, np.float64)
    det = a * d - b * c
    return np.array([[d, -b, b * ty - d * tx], [-c, a, c * tx - a * ty]]) / det
