"""The committed real-photo annotations are well-formed, and bench/real.py's metrics compute what they say."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import real  # noqa: E402
from realset import LANDMARKS, SHARED_PHOTOS, SIDES, TOE_POSTURES, find_photo, load_annotations, points_of, sha256  # noqa: E402

from toeangle.schema import Landmarks, Measurement, MeasurementResult, MeasureOptions, Verdict  # noqa: E402

ENTRIES = load_annotations()
FIELDS = {"id", "repo", "path", "licence", "sha256", "width", "height", "side", "acceptable", "toe_cut_off",
          "posture", "points"}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_annotation_is_well_formed(entry):
    assert FIELDS <= set(entry), FIELDS - set(entry)
    assert entry.get("commit") or entry.get("package"), "a photo is named by commit or installed package"
    assert len(entry["sha256"]) == 64 and entry["side"] in SIDES
    assert set(entry["posture"]) == {"standing", "heel_raised", "toe"} and entry["posture"]["toe"] in TOE_POSTURES
    assert not entry["acceptable"] or entry["side"] == "medial", "only inner-side views can be acceptable"
    for key in ("points", "repeat"):
        if key not in entry:
            continue
        assert set(entry[key]) == set(LANDMARKS)
        for point in points_of(entry[key]).values():
            assert 0 <= point[0] < entry["width"] and 0 <= point[1] < entry["height"], (key, point)
    if entry["acceptable"]:  # the benchmark's reference needs the angle's points and the foot length
        assert {"heel", "first_metatarsal", "first_mtp", "hallux_tip"} <= set(points_of(entry["points"]))
        assert real.points_angle(points_of(entry["points"])) is not None


def test_ids_are_unique_and_the_photos_are_unlicensed_only_where_said():
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids))
    assert {e["licence"] for e in ENTRIES if e["repo"] == "uwm-bigdata/wound-segmentation"} == {
        "none stated: measure only (never train on it, never commit the photo)"}


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.get("shared_path")],
                         ids=[e["id"] for e in ENTRIES if e.get("shared_path")])
def test_shared_photos_match_their_sha256(entry):
    if not (SHARED_PHOTOS / entry["shared_path"]).exists():
        pytest.skip("../shared/real-photos is not here")
    found = find_photo(entry)
    assert found.data is not None and sha256(found.data) == entry["sha256"], found.where


def _square(size: float = 100.0) -> dict[str, np.ndarray]:
    """A flat foot along +x, heel below the axis (y down), toe bent up 45 degrees at the joint."""
    return {"heel": np.array([0.0, 10.0]), "first_metatarsal": np.array([47.0, 0.0]),
            "first_mtp": np.array([72.0, 0.0]), "hallux_ip": np.array([72.0 + 10, -10.0]),
            "hallux_tip": np.array([size, 0.0])}


def test_landmark_error_is_a_share_of_the_annotated_foot_length():
    truth = _square()
    moved = {**truth, "first_mtp": truth["first_mtp"] + (3.0, 4.0)}  # 5 px off on a 100.5 px foot
    errors = real.landmark_errors_pct(moved, truth)
    length = np.hypot(100, 10)
    assert errors["first_mtp"] == pytest.approx(500 / length)
    assert errors["heel"] == 0 and set(errors) == set(LANDMARKS)
    assert real.landmark_errors_pct(moved, {n: p for n, p in truth.items() if n != "heel"}) == {}


def test_signed_error_is_along_the_foot_and_towards_the_dorsum():
    truth = _square()  # heel (0, 10) -> tip (100, 0), the dorsum towards negative y (image up)
    moved = {**truth, "first_mtp": truth["first_mtp"] + (10.0, 1.0)}  # forwards, and 1 px towards the sole
    along, up = real.signed_errors_pct(moved, truth)["first_mtp"]
    squared_length = 100.0 ** 2 + 10.0 ** 2  # the offset projected on (100, -10) and (-10, -100), over the length
    assert along == pytest.approx(100 * (10 * 100 - 1 * 10) / squared_length)
    assert up == pytest.approx(100 * (-10 * 10 - 1 * 100) / squared_length)
    flipped = {n: p * (1, -1) for n, p in truth.items()}  # the same foot mirrored: the signs must not change
    assert real.signed_errors_pct({**flipped, "first_mtp": flipped["first_mtp"] + (10.0, -1.0)}, flipped)[
        "first_mtp"] == pytest.approx((along, up))
    assert real.signed_errors_pct(moved, {n: p for n, p in truth.items() if n != "first_metatarsal"}) == {}


def test_points_angle_follows_the_contract():
    assert real.points_angle(_square()) == pytest.approx(45.0)
    assert real.points_angle({n: p * (1, -1) for n, p in _square().items()}) == pytest.approx(45.0)  # mirrored
    assert real.points_angle({"heel": np.array([0.0, 0.0])}) is None


def _result(status: str, angle: float | None = None, *reasons: str) -> MeasurementResult:
    measurement = None if angle is None else Measurement(angle_deg=angle, angle_2d_deg=angle, phalanx_point="hallux_ip")
    verdict = None if angle is None else Verdict(protocol="passive_nwb", label="restricted", normal_min_deg=65.0,
                                                  summary=f"{angle:.0f} deg")
    return MeasurementResult(status=status, reasons=reasons, detector="test", landmarks=Landmarks(),
                             measurement=measurement, verdict=verdict, options=MeasureOptions())


def test_turned_copies_agree_only_with_the_same_status_and_a_close_angle():
    assert real.agrees(_result("ok", 30.0), _result("ok", 31.9))
    assert not real.agrees(_result("ok", 30.0), _result("ok", 32.5))
    assert not real.agrees(_result("ok", 30.0), _result("unmeasurable", None, "no foot found in the photo"))
    assert real.agrees(_result("unmeasurable", None, "a"), _result("unmeasurable", None, "b"))


def test_the_stated_interval_holds_an_annotation_within_its_half_width():
    measurement = Measurement(angle_deg=20.0, angle_2d_deg=20.0, uncertainty_deg=6.0, phalanx_point="hallux_ip")
    assert real.within_stated(measurement, 14.0) and real.within_stated(measurement, 26.0)
    assert not real.within_stated(measurement, 13.5) and not real.within_stated(measurement, 26.5)
    assert real.within_stated(measurement.model_copy(update={"uncertainty_deg": None}), 20.0) is None


def test_refusals_are_sorted_by_their_reason():
    outer = "this looks like the outer side of the foot, where the big-toe joint is hidden behind the foot"
    view = "the view is about 58 degrees away from side-on (limit 30): photograph the inner side"
    assert real.reason_kind(outer) == "outer side" and real.reason_kind(view) == "view"
    assert real.reason_kind("something new") == "other"
    assert real.refused_rightly("lateral", (view, outer)) and not real.refused_rightly("lateral", (view,))
    assert real.refused_rightly("top", (view,)) and not real.refused_rightly("no-foot", ())


def test_repeat_error_compares_the_two_passes():
    first = {n: p.tolist() for n, p in _square().items()}
    second = {**first, "hallux_ip": [82.0, -13.0]}  # 3 px off
    errors = real.repeat_errors([{"points": first, "repeat": second}, {"points": first}])
    assert errors["px"] == pytest.approx([0, 0, 0, 3, 0])
    assert errors["pct"][3] == pytest.approx(300 / np.hypot(100, 10))
    assert len(errors["angle"]) == 1 and errors["angle"][0] > 0


LICENSED = [e for e in ENTRIES if e.get("shared_path") and e["points"]]
"""The annotated photos whose licence lets the tests read them (../shared/real-photos, MIT)."""


@pytest.fixture(scope="module")
def measurer():
    from toeangle.pipeline import Measurer
    from toeangle.settings import Settings

    return Measurer(Settings(detector="keypoint"))


@pytest.mark.skipif(not SHARED_PHOTOS.exists(), reason="../shared/real-photos not found (set TOEANGLE_SHARED_DIR)")
@pytest.mark.parametrize("entry", LICENSED, ids=[e["id"] for e in LICENSED])
def test_the_model_on_an_annotated_licensed_photo_is_near_the_annotation_or_refuses(measurer, entry):
    """Issue 18's honest bound on real photos: an answer lies where the team put the points (the angle within
    15 degrees, every point within 10% of the foot length: the annotators' own repeat p95 is 5.9 degrees and
    3.2%), a photo that is not an acceptable inner-side view is never measured, and a refusal says why.
    The licensed photos with all five points (realset.trainable) are also stage 2's real training crops (its decoder,
    v10, and view head, v11), so on those this checks what was learnt; the held-out figures are bench/real.py's, which leaves them out."""
    found = find_photo(entry)
    assert found.data is not None, found.where
    result = measurer.measure_photo(found.data, MeasureOptions()).result
    if result.status != "ok":
        assert result.reasons
        return
    assert entry["acceptable"], f"a {entry['side']} view that a clinician would not accept was measured"
    annotated = points_of(entry["points"])
    errors = real.landmark_errors_pct(real.predicted_points(result), annotated)
    assert max(errors.values()) <= 10.0, errors
    assert abs(result.measurement.angle_deg - real.points_angle(annotated)) <= 15.0
