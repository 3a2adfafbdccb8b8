"""Hallux dorsiflexion geometry: NumPy points in, degrees out, no I/O.

Points are arrays whose last axis holds (x, y); any leading axes broadcast, so one call
scores one foot or a whole batch. The angle follows the project's contract
(../shared/find/README.md): the angle between the metatarsal axis
(first_metatarsal -> first_mtp) and the proximal phalanx axis (first_mtp -> phalanx end),
0 when collinear, positive when the phalanx turns away from the side of the metatarsal
axis on which the heel lies. The sign comes from anatomy, never from image axes, so left
and right feet, mirrored and rotated photos read the same.

>>> round(float(dorsiflexion_deg([0, 10], [10, 0], [20, 0], [30, -10])), 6)
45.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

MIN_HEEL_OFFSET = np.sin(np.deg2rad(2.0))
"""The heel must sit at least 2 degrees off the metatarsal axis to tell the plantar side."""

Z_90 = 1.6448536269514722
"""Two-sided 90% normal quantile: turns a 1-sigma angle error into a ~90% half-width."""


class GeometryError(ValueError):
    """The points cannot define the angle (coincident, or heel on the metatarsal axis)."""


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _as_points(*points: ArrayLike) -> list[np.ndarray]:
    arrays = [np.asarray(p, dtype=np.float64) for p in points]
    for a in arrays:
        if a.shape[-1:] != (2,):
            raise GeometryError(f"points need a last axis of size 2 (x, y), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise GeometryError("points must be finite numbers")
    return arrays


def dorsiflexion_deg(heel: ArrayLike, metatarsal: ArrayLike, mtp: ArrayLike, phalanx_end: ArrayLike) -> np.ndarray:
    """Signed hallux dorsiflexion in degrees, in (-180, 180].

    ``phalanx_end`` is ``hallux_ip`` (preferred) or ``hallux_tip``. Raises GeometryError
    for a zero-length axis or a heel on the metatarsal axis, rather than invent an angle.
    """
    heel, metatarsal, mtp, phalanx_end = _as_points(heel, metatarsal, mtp, phalanx_end)
    with np.errstate(over="ignore"):  # checked just below
        axis = mtp - metatarsal
        phalanx = phalanx_end - mtp
        to_heel = heel - metatarsal
        size = np.hypot(axis[..., 0], axis[..., 1]) + np.hypot(phalanx[..., 0], phalanx[..., 1])
    if not (np.all(np.isfinite(size)) and np.all(np.isfinite(to_heel))):
        raise GeometryError("the points are too far apart to measure")
    if np.any(size == 0):
        raise GeometryError("first_metatarsal, first_mtp and the phalanx end must be distinct points")
    # Scale-free from here: products of raw coordinates overflow (1e154) or underflow (1e-300) to garbage.
    unit = size[..., None]
    axis, phalanx, to_heel = axis / unit, phalanx / unit, to_heel / unit
    axis_len = np.hypot(axis[..., 0], axis[..., 1])
    phalanx_len = np.hypot(phalanx[..., 0], phalanx[..., 1])
    heel_len = np.hypot(to_heel[..., 0], to_heel[..., 1])
    if np.any(axis_len <= 1e-6) or np.any(phalanx_len <= 1e-6):
        raise GeometryError("first_metatarsal, first_mtp and the phalanx end must be distinct points")
    heel_side = _cross(axis, to_heel)
    if np.any(heel_len == 0) or np.any(np.abs(heel_side) < MIN_HEEL_OFFSET * axis_len * heel_len):
        raise GeometryError("the heel lies on the metatarsal axis, so the plantar side is unknown")
    turn = _cross(axis, phalanx)
    unsigned = np.degrees(np.arctan2(np.abs(turn), np.einsum("...i,...i->...", axis, phalanx)))
    # Away from the heel's side is dorsiflexion; toward it (or exactly straight) is not.
    return np.where(turn * heel_side < 0, unsigned, -unsigned)


def angle_sigma_deg(
    heel: ArrayLike, metatarsal: ArrayLike, mtp: ArrayLike, phalanx_end: ArrayLike,
    sigmas_px: ArrayLike,
) -> float:
    """1-sigma angle error from isotropic landmark errors, by linear propagation.

    ``sigmas_px`` holds the metatarsal, MTP and phalanx-end sigmas; the heel only fixes
    the sign, so its error does not enter. Central differences keep this exact to first
    order for one foot (no leading axes).
    """
    heel, metatarsal, mtp, phalanx_end = _as_points(heel, metatarsal, mtp, phalanx_end)
    sigmas = np.asarray(sigmas_px, dtype=np.float64)
    if sigmas.shape != (3,) or np.any(sigmas < 0) or not np.all(np.isfinite(sigmas)):
        raise GeometryError("sigmas_px needs three finite non-negative values")
    size = float(np.hypot(*(mtp - metatarsal)) + np.hypot(*(phalanx_end - mtp)))
    step = 1e-4 * size
    # every point moved along x and y, both ways: 12 copies, measured in one call (a clip does this per frame)
    copies = np.repeat(np.stack([metatarsal, mtp, phalanx_end])[None], 12, axis=0)  # [point, axis, sign] x 3 points
    moves = np.array([(i, axis, sign) for i in range(3) for axis in range(2) for sign in (1, -1)])
    copies[np.arange(12), moves[:, 0], moves[:, 1]] += moves[:, 2] * step
    angles = dorsiflexion_deg(heel, copies[:, 0], copies[:, 1], copies[:, 2]).reshape(3, 2, 2)
    gradient = (angles[..., 0] - angles[..., 1]) / (2 * step)  # [point, axis]
    with np.errstate(over="ignore"):  # checked below
        variance = np.sum(np.square(gradient, dtype=np.float64) * (sigmas**2)[:, None])
    result = float(np.sqrt(variance))
    if not np.isfinite(result):
        raise GeometryError("the angle's uncertainty cannot be computed for these points and sigmas")
    return result


def project_sagittal(points_xyz: ArrayLike) -> np.ndarray:
    """3D FIND coordinates (+x heel to toe, +z up) to the sagittal (x, z) plane.

    Image-style y points down, so z is negated: the result feeds dorsiflexion_deg directly.
    """
    p = np.asarray(points_xyz, dtype=np.float64)
    return np.stack([p[..., 0], -p[..., 2]], axis=-1)
