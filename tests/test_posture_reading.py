"""Landmarks -> posture (posture_reading.py): the annotated real side views, and the properties a reading
from points in the upright photo must have (mirror, size and place do not matter; a quarter turn does)."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_posture import PLACED

from toeangle.posture_reading import STANDING_MAX, posture_of, read_posture
from toeangle.schema import LANDMARK_NAMES, Landmarks

ANNOTATIONS = Path(__file__).resolve().parents[1] / "bench" / "real" / "annotations.json"


def side_views() -> list[dict]:
    """The annotated real views a clinician would accept (inner side, within about 30 degrees of side-on) with the
    four points the reading needs (points only: no photo is read). Points placed anyway on views from well above
    are left out: looking down at a standing foot makes it point up the photo as a lying one does, which is why
    posture_of keeps no lying reading behind a refusal for the view."""
    photos = json.loads(ANNOTATIONS.read_text())["photos"]
    return [p for p in photos if p.get("acceptable") and p.get("points")
            and all(p["points"].get(n) for n in ("heel", "first_metatarsal", "first_mtp", "hallux_tip"))]


def landmarks(points: dict) -> Landmarks:
    return Landmarks.model_validate({name: xy for name, xy in points.items() if xy is not None})


def test_the_annotated_real_side_views_read_standing_or_not_as_labelled():
    """The team's points on 65 real photos (49 standing, 16 lying or seated): every one right. The limits
    were set looking at the first 46 of them, so this holds the reading to them; bench/posture.py measures the
    model's own points."""
    views = side_views()
    assert len(views) >= 65
    wrong = [v["id"] for v in views if (read_posture(landmarks(v["points"])).standing >= 0.5)
             != v["posture"]["standing"]]
    assert wrong == []
    resting = [v for v in views if v["posture"]["toe"] == "resting"]
    called = sum(read_posture(landmarks(v["points"])).toe["resting"] >= 0.5 for v in resting)
    assert called >= 0.9 * len(resting)  # measured 62 of 65 (43 of the first 46: two lying toes at 38 and 41 deg read raised)


@pytest.mark.parametrize("placed, standing, heel_raised, toe", [
    ("relaxed_standing", True, False, "resting"), ("weight_bearing", True, False, "raised"),
    ("heel_raise", True, True, None), ("passive_nwb", False, False, "raised"), ("lying_relaxed", False, False, "resting"),
])
def test_each_placement_reads_as_placed(placed, standing, heel_raised, toe):
    p = read_posture(landmarks(PLACED[placed]))
    assert (p.standing >= 0.5) == standing and (p.heel_raised >= 0.5) == heel_raised
    if toe is not None:
        assert p.toe[toe] >= 0.9


def transformed(points: dict, matrix: np.ndarray, shift: np.ndarray) -> dict:
    return {name: (matrix @ np.asarray(xy, float) + shift).tolist() for name, xy in points.items()}


@given(st.sampled_from(sorted(PLACED)), st.floats(0.2, 5.0), st.floats(-2000, 2000), st.floats(-2000, 2000),
       st.booleans())
def test_size_place_and_mirroring_do_not_change_the_posture(placed, scale, dx, dy, mirror):
    matrix = np.diag([-scale if mirror else scale, scale])
    moved = read_posture(landmarks(transformed(PLACED[placed], matrix, np.array([dx, dy]))))
    assert moved == read_posture(landmarks(PLACED[placed]))


@pytest.mark.parametrize("turns", [1, 3])
def test_a_quarter_turn_without_its_exif_hides_the_floor(turns):
    """Down in the upright photo stands for gravity: a relaxed standing foot turned on its side no longer
    reads as standing. Decoding applies EXIF, so only a photo saved sideways without it is affected."""
    matrix = np.linalg.matrix_power(np.array([[0.0, -1.0], [1.0, 0.0]]), turns)
    turned = read_posture(landmarks(transformed(PLACED["relaxed_standing"], matrix, np.zeros(2))))
    assert turned.standing < 0.5


def test_without_the_heel_or_a_toe_point_no_posture_is_read():
    for missing in ("heel", "first_metatarsal", "first_mtp"):
        assert read_posture(landmarks({k: v for k, v in PLACED["weight_bearing"].items() if k != missing})) is None
    no_toe = {k: v for k, v in PLACED["weight_bearing"].items() if k not in ("hallux_ip", "hallux_tip")}
    assert read_posture(landmarks(no_toe)) is None
    only_tip = {k: v for k, v in PLACED["weight_bearing"].items() if k != "hallux_ip"}
    assert read_posture(landmarks(only_tip)).toe["raised"] > 0.9


def test_a_view_refusal_keeps_only_a_standing_reading():
    """Looking down at a standing foot makes it point up the photo, as a lying foot does."""
    lying, standing = landmarks(PLACED["passive_nwb"]), landmarks(PLACED["relaxed_standing"])
    assert posture_of(lying, ("off_axis",)) is None and posture_of(lying, ("blurry",)) is not None
    assert posture_of(standing, ("off_axis",)) == read_posture(standing)


coordinate = st.floats(-5000, 5000, allow_nan=False)


@given(st.lists(st.tuples(coordinate, coordinate), min_size=5, max_size=5))
def test_any_points_give_no_posture_or_a_valid_one(xy):
    p = read_posture(landmarks(dict(zip(LANDMARK_NAMES, xy))))
    if p is not None:
        assert 0.0 <= p.standing <= STANDING_MAX and 0.0 <= p.heel_raised <= 1.0
        assert abs(sum(p.toe.values()) - 1.0) <= 0.01
