"""Landmarks -> Measurement: the view correction and how uncertainties combine."""

import math

import pytest

from toeangle.angle import measure_angle
from toeangle.geometry import Z_90
from toeangle.schema import Landmarks, ViewCorrection

POINTS = {"heel": [60, 230], "first_metatarsal": [206, 166], "first_mtp": [300, 200], "hallux_ip": [340, 170]}


def landmarks(sigma_px=None) -> Landmarks:
    return Landmarks(**{k: {"x": x, "y": y, "sigma_px": sigma_px} for k, (x, y) in POINTS.items()})


def test_without_a_correction_the_angle_is_the_drawn_angle():
    m = measure_angle(landmarks())
    assert m.angle_deg == m.angle_2d_deg and m.view_correction is None


def test_the_correction_is_added_to_the_drawn_angle():
    plain = measure_angle(landmarks())
    m = measure_angle(landmarks(), ViewCorrection(degrees=-7.25, sigma_deg=1.0))
    assert m.angle_2d_deg == plain.angle_deg
    assert m.angle_deg == pytest.approx(plain.angle_deg - 7.25, abs=0.011)
    assert m.uncertainty_deg is None  # manual points without sigmas: no interval, with or without a correction


def test_uncertainties_add_in_quadrature():
    points_only = measure_angle(landmarks(sigma_px=2.0)).uncertainty_deg
    sigma_points = points_only / Z_90
    m = measure_angle(landmarks(sigma_px=2.0), ViewCorrection(degrees=3.0, sigma_deg=4.0))
    assert m.uncertainty_deg == pytest.approx(Z_90 * math.hypot(sigma_points, 4.0), abs=0.02)
    assert m.uncertainty_deg > points_only


def test_sub_pixel_axes_and_absurd_values_are_refused():
    """Issue 20: points 1e-300 apart, coordinates of 1e154, sigmas of 1e300 and negative image sizes."""
    from pydantic import ValidationError

    from toeangle.errors import LandmarkError
    from toeangle.schema import ImageInfo, MeasurementResult, MeasureOptions

    tiny = Landmarks(**{k: {"x": x * 1e-300, "y": y * 1e-300} for k, (x, y) in POINTS.items()})
    with pytest.raises(LandmarkError, match="1 px apart"):
        measure_angle(tiny)
    for bad in ({"x": 1e154, "y": 0}, {"x": 0, "y": 0, "sigma_px": 1e300}, {"x": math.nan, "y": 0}):
        with pytest.raises(ValidationError):
            Landmarks(first_mtp=bad)
    with pytest.raises(ValidationError):
        ImageInfo(width=-5, height=10)
    with pytest.raises(ValidationError):
        ViewCorrection(degrees=0, sigma_deg=1e300)
    with pytest.raises(ValidationError, match="status ok needs"):
        MeasurementResult(status="ok", detector="manual", landmarks=landmarks(), options=MeasureOptions())
