"""Properties of the angle: what it must not depend on, and what must flip it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toeangle.geometry import GeometryError, angle_sigma_deg, dorsiflexion_deg, project_sagittal


def foot(angle_deg: float, met_len: float = 100.0, phal_len: float = 40.0, declination_deg: float = 20.0) -> np.ndarray:
    """A right foot seen from the side in image coordinates (y down), toe to the right.

    Rows: heel, first_metatarsal, first_mtp, phalanx end. The metatarsal slopes down toward
    the toe; the toe turns up (smaller y) by ``angle_deg`` relative to the metatarsal axis.
    """
    mtp = np.array([300.0, 200.0])
    axis_dir = np.radians(declination_deg)  # pointing down-right in image coords
    axis = np.array([np.cos(axis_dir), np.sin(axis_dir)])
    met = mtp - met_len * axis
    phal_dir = axis_dir - np.radians(angle_deg)  # rotating toward -y is "up"
    end = mtp + phal_len * np.array([np.cos(phal_dir), np.sin(phal_dir)])
    heel = np.array([60.0, 230.0])
    return np.stack([heel, met, mtp, end])


def angle(points: np.ndarray) -> float:
    return float(dorsiflexion_deg(*points))


def rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


angles = st.floats(min_value=-60, max_value=120, allow_nan=False)


@given(true=angles)
def test_reads_the_constructed_angle(true):
    assert angle(foot(true)) == pytest.approx(true, abs=1e-9)


@given(true=angles, theta=st.floats(0, 2 * np.pi), shift=st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4)),
       scale=st.floats(1e-2, 1e3))
def test_invariant_to_rotation_translation_and_scale(true, theta, shift, scale):
    points = foot(true)
    moved = scale * points @ rotation(theta).T + np.array(shift)
    assert angle(moved) == pytest.approx(true, abs=1e-6)


@given(true=angles, theta=st.floats(0, 2 * np.pi))
def test_mirror_image_reads_the_same(true, theta):
    """A left foot is a mirrored right foot; a mirrored photo must not change the angle."""
    mirrored = foot(true) @ np.diag([-1.0, 1.0]) @ rotation(theta).T
    assert angle(mirrored) == pytest.approx(true, abs=1e-6)


@given(true=st.floats(min_value=0.5, max_value=120))
def test_toe_bent_down_flips_the_sign(true):
    """Reflecting the phalanx across the metatarsal axis turns dorsiflexion into plantarflexion."""
    heel, met, mtp, end = foot(true)
    axis = (mtp - met) / np.linalg.norm(mtp - met)
    rel = end - mtp
    reflected = mtp + 2 * (rel @ axis) * axis - rel
    assert angle(np.stack([heel, met, mtp, reflected])) == pytest.approx(-true, abs=1e-6)


def test_sign_comes_from_the_heel_not_the_image_axes():
    """Turning the photo upside down keeps the sign; moving the heel across the axis flips it."""
    points = foot(40)
    upside_down = points @ rotation(np.pi).T
    assert angle(upside_down) == pytest.approx(40)
    heel, met, mtp, end = points
    axis = (mtp - met) / np.linalg.norm(mtp - met)
    rel = heel - met
    other_side = met + 2 * (rel @ axis) * axis - rel
    assert angle(np.stack([other_side, met, mtp, end])) == pytest.approx(-40)


def test_range_is_wrapped_to_half_open_180():
    assert -180 < angle(foot(179.0)) <= 180
    assert angle(foot(-170)) == pytest.approx(-170)


def test_vectorised_over_leading_axes():
    batch = np.stack([foot(a) for a in (-10, 0, 45, 90)])
    result = dorsiflexion_deg(batch[:, 0], batch[:, 1], batch[:, 2], batch[:, 3])
    assert result.shape == (4,)
    np.testing.assert_allclose(result, [-10, 0, 45, 90], atol=1e-9)


@pytest.mark.parametrize("broken", ["met_on_mtp", "end_on_mtp"])
def test_coincident_points_raise(broken):
    heel, met, mtp, end = foot(30)
    if broken == "met_on_mtp":
        met = mtp.copy()
    else:
        end = mtp.copy()
    with pytest.raises(GeometryError, match="distinct"):
        dorsiflexion_deg(heel, met, mtp, end)


def test_heel_on_the_metatarsal_axis_raises():
    heel, met, mtp, end = foot(30)
    on_axis = met - 2.0 * (mtp - met)
    with pytest.raises(GeometryError, match="heel"):
        dorsiflexion_deg(on_axis, met, mtp, end)


@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0], [np.nan, 1.0], [np.inf, 0.0]])
def test_malformed_points_raise(bad):
    heel, met, mtp, end = foot(30)
    with pytest.raises(GeometryError):
        dorsiflexion_deg(bad, met, mtp, end)


def test_sagittal_projection_reads_3d_ground_truth():
    """FIND coordinates: +x heel to toe, +z up; a toe raised in z is dorsiflexion."""
    heel = [0.0, 0.0, 0.0]
    met = [0.12, -0.03, 0.04]
    mtp = [0.19, -0.03, 0.02]
    end = [0.19 + 0.035 * np.cos(np.radians(30)), -0.03, 0.02 + 0.035 * np.sin(np.radians(30))]
    pts = project_sagittal(np.array([heel, met, mtp, end]))
    declination = np.degrees(np.arctan2(0.02, 0.07))
    assert angle(pts) == pytest.approx(30 + declination, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(true=st.floats(min_value=-20, max_value=100), sigma=st.floats(0.5, 3.0))
def test_uncertainty_matches_monte_carlo(true, sigma):
    points = foot(true)
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, sigma, size=(4000, 3, 2))
    noisy = points[1:][None] + noise
    samples = dorsiflexion_deg(points[0], noisy[:, 0], noisy[:, 1], noisy[:, 2])
    predicted = angle_sigma_deg(*points, [sigma] * 3)
    assert predicted == pytest.approx(np.std(samples), rel=0.1)


def test_uncertainty_grows_as_the_phalanx_shortens():
    long_toe = angle_sigma_deg(*foot(30, phal_len=80), [1, 1, 1])
    short_toe = angle_sigma_deg(*foot(30, phal_len=20), [1, 1, 1])
    assert short_toe > 2.5 * long_toe


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e154, 1e300])
def test_extreme_scales_read_the_same_angle_or_refuse(scale):
    """Issue 20: at 1e154 the raw cross products overflowed (NaN, answered as ok with a null angle),
    at 1e300 and 1e-300 they over- or underflowed into garbage angles."""
    points = [np.array(p, dtype=float) for p in ([0, 10], [10, 0], [20, 0], [30, -10])]
    assert float(dorsiflexion_deg(*(p * scale for p in points))) == pytest.approx(45.0)
    with pytest.raises(GeometryError):
        dorsiflexion_deg([0, 1e308], [-1.7e308, 0], [1.7e308, 0], [1.7e308, -1e308])
    with pytest.raises(GeometryError):
        angle_sigma_deg(*(p * 1e-300 for p in points), [1.0, 1.0, 1.0])
