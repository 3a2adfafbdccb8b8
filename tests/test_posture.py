"""The posture rule: each protocol's match and mismatch, the confidence thresholds, `auto`, and the
verdict each gives. The rule's tests construct postures; the edges' tests construct points placed as
each test places the foot, read by posture_reading.py (its own tests: test_posture_reading.py; real
photos: test_posture_photos.py and bench/posture.py)."""

import json
from typing import get_args

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toeangle.batch.report import build_report
from toeangle.batch.rows import CSV_COLUMNS, Row
from toeangle.cli import format_result, main
from toeangle.clinical import load_rules
from toeangle.decode import DecodedImage
from toeangle.detectors import ManualPoints
from toeangle.overlay import VERDICT_COLOURS, draw_overlay, posture_banner
from toeangle.pipeline import Measurer
from toeangle.posture import MATCH_MIN, MISMATCH_MAX, PROTOCOL_POSTURES, assess, pick, protocol_probabilities
from toeangle.routine import prescribe
from toeangle.schema import ImageInfo, Landmarks, MeasureOptions, Posture, Protocol
from toeangle.settings import Settings
from toeangle.verdict import judge

RULES = load_rules()
PROTOCOLS = tuple(PROTOCOL_POSTURES)
"""The photo tests, each a posture (walking and running are clips' movements)."""


def posture(standing: float, heel_raised: float = 0.02, toe: str = "resting", sure: float = 0.96) -> Posture:
    return Posture(standing=standing, heel_raised=heel_raised,
                   toe={state: sure if state == toe else 1 - sure for state in ("raised", "resting")})


# Each test as posture_reading reads a photo of it (standing is never surer than 0.7: weight does not show).
SHOWS = {
    "passive_nwb": posture(0.03, toe="raised"),
    "active_nwb": posture(0.03, toe="raised"),
    "weight_bearing": posture(0.7, toe="raised"),
    "heel_raise": posture(0.7, heel_raised=0.95, toe="resting"),
}
RELAXED_STANDING = posture(0.7, toe="resting")
RELAXED_SEATED = posture(0.03, toe="resting")
LOOK_ALIKE = {frozenset({"passive_nwb", "active_nwb"})}
"""Who bends the toe back does not show: the passive and the active test's photos are the same posture."""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_test_matches_its_own_photo_and_keeps_todays_verdict(protocol):
    report = assess(SHOWS[protocol], protocol, RULES)
    assert report.fit == "match" and report.advice is None and report.suggested_protocol is None
    options = MeasureOptions(protocol=protocol)
    for angle in (5.0, 30.0, 70.0):
        assert judge(angle, options, RULES, 2.0, report) == judge(angle, options, RULES, 2.0)


@pytest.mark.parametrize("chosen", PROTOCOLS)
@pytest.mark.parametrize("shown", PROTOCOLS)
def test_every_other_tests_photo_is_a_mismatch_that_suggests_the_test_it_shows(chosen, shown):
    if chosen == shown or {chosen, shown} in LOOK_ALIKE:
        return
    report = assess(SHOWS[shown], chosen, RULES)
    if shown == "weight_bearing" and chosen in ("passive_nwb", "active_nwb"):
        # a level foot with the toe raised may be held in the air: unsure, today's verdict with the doubt
        assert report.fit == "unsure" and "may not be a photo" in report.advice
        return
    suggested = "passive_nwb" if shown == "active_nwb" else shown  # the first of two that look alike
    assert report.fit == "mismatch" and report.suggested_protocol == suggested
    assert report.switch_to == suggested  # the photo shows it: judged by it as it is, no retake
    verdict = judge(30.0, MeasureOptions(protocol=chosen), RULES, 2.0, report)
    assert verdict.label == "test-mismatch" and verdict.protocol == chosen and verdict.grade is None
    assert verdict.suggested_protocol == suggested
    assert verdict.suggested_normal_min_deg == RULES.protocols[suggested].normal_min_deg
    assert verdict.normal_min_deg == RULES.protocols[chosen].normal_min_deg
    assert "30 deg" in verdict.summary and report.advice in verdict.summary  # the angle is still reported


def test_a_relaxed_standing_foot_under_the_passive_test_says_so_and_suggests_weight_bearing():
    report = assess(RELAXED_STANDING, "passive_nwb", RULES)
    assert report.fit == "mismatch" and report.suggested_protocol == "weight_bearing"
    assert report.switch_to is None  # placed for the weight-bearing test, but its toe is not lifted: retake
    assert "relaxed standing foot" in report.seen
    assert "pushed back by hand" in report.advice and "25 deg" in report.advice
    verdict = judge(14.0, MeasureOptions(), RULES, 3.0, report)
    assert verdict.label == "test-mismatch" and verdict.grade is None  # not "restricted, grade 2"


def test_auto_judges_a_relaxed_standing_foot_by_the_weight_bearing_test_and_says_the_toe_is_not_lifted():
    report = assess(RELAXED_STANDING, "auto", RULES)
    assert report.protocol == "weight_bearing" and report.fit == "mismatch" and report.suggested_protocol is None
    assert "helper lifting the big toe" in report.advice
    verdict = judge(14.0, MeasureOptions(protocol="auto"), RULES, 3.0, report)
    assert verdict.protocol == "weight_bearing" and verdict.normal_min_deg == 25.0
    assert verdict.label == "test-mismatch" and "Judged by the weight-bearing" in verdict.summary


def test_a_relaxed_seated_foot_fits_no_test_and_suggests_none():
    for protocol in ("passive_nwb", "active_nwb"):
        report = assess(RELAXED_SEATED, protocol, RULES)
        assert report.fit == "mismatch" and report.suggested_protocol is None
        assert "Retake the photo" in report.advice and "off the floor" in report.seen


def test_the_passive_and_the_active_test_match_each_others_photo():
    for chosen, shown in (("passive_nwb", "active_nwb"), ("active_nwb", "passive_nwb")):
        assert assess(SHOWS[shown], chosen, RULES).fit == "match"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auto_picks_the_test_the_photo_shows_and_says_how_sure(protocol):
    report = assess(SHOWS[protocol], "auto", RULES)
    picked = "passive_nwb" if protocol == "active_nwb" else protocol  # the default, for a raised toe off the floor
    assert report.protocol == picked == pick(SHOWS[protocol]) and report.fit == "match"
    verdict = judge(50.0, MeasureOptions(protocol="auto"), RULES, 2.0, report)
    assert verdict.protocol == picked and verdict.label in ("normal", "restricted", "borderline")
    assert f"({report.tests[picked]:.0%} sure)" in verdict.summary


def test_a_photo_judged_by_a_movement_is_not_checked():
    assert set(PROTOCOLS) | {"walking", "running"} == set(get_args(Protocol.__value__))
    for movement in ("walking", "running"):
        assert assess(RELAXED_STANDING, movement, RULES) is None
        result = measured("relaxed_standing", movement)
        assert result.posture is None and result.verdict.protocol == movement and result.routine is not None


def test_auto_without_a_posture_judges_by_the_default_test_and_says_why():
    verdict = judge(70.0, MeasureOptions(protocol="auto"), RULES)
    assert verdict.protocol == "passive_nwb" and verdict.label == "normal"
    assert "gives no posture" in verdict.summary


def test_without_a_posture_the_verdict_is_todays():
    verdict = judge(30.0, MeasureOptions(), RULES, 2.0)
    assert verdict.label == "restricted" and verdict.suggested_protocol is None
    assert "posture" not in verdict.summary.lower() and "looks like" not in verdict.summary


@pytest.mark.parametrize("standing, fit", [(0.35, "match"), (0.45, "match"), (0.55, "unsure"), (0.75, "unsure"),
                                           (0.85, "mismatch"), (0.97, "mismatch")])
def test_the_thresholds_between_match_unsure_and_mismatch(standing, fit):
    """Passive test, toe raised surely (0.96): the test's probability is (1 - standing) * 0.96."""
    report = assess(posture(standing, toe="raised"), "passive_nwb", RULES)
    p = report.tests["passive_nwb"]
    assert report.fit == fit
    assert (p >= MATCH_MIN) == (fit == "match") and (p <= MISMATCH_MAX) == (fit == "mismatch")


def test_unsure_keeps_the_label_and_adds_the_doubt_to_the_summary():
    report = assess(posture(0.6, toe="raised"), "passive_nwb", RULES)
    verdict = judge(30.0, MeasureOptions(), RULES, 2.0, report)
    assert report.fit == "unsure" and verdict.label == "restricted" and verdict.grade is not None
    assert "may not be a photo of the passive" in verdict.summary


def test_a_mismatch_gets_no_grade_but_still_says_see_a_clinician_for_pain():
    report = assess(RELAXED_STANDING, "passive_nwb", RULES)
    verdict = judge(5.0, MeasureOptions(pain=True), RULES, 2.0, report)
    assert verdict.label == "test-mismatch" and verdict.grade is None
    assert RULES.advice["pain"] in verdict.summary  # the routine that would say it is not given
    assert prescribe(judge(5.0, MeasureOptions(pain=True), RULES, 2.0), RULES, pain=True).see_clinician


probabilities = st.floats(0.0, 1.0)


@given(probabilities, probabilities, probabilities, st.sampled_from((*PROTOCOLS, "auto")))
def test_any_posture_gives_a_consistent_report(standing, heel, raised, chosen):
    p = Posture(standing=standing, heel_raised=heel, toe={"raised": raised, "resting": 1.0 - raised})
    report = assess(p, chosen, RULES)
    tests = protocol_probabilities(p)
    assert all(0.0 <= v <= 1.0 + 1e-9 for v in tests.values())
    assert tests["passive_nwb"] + tests["weight_bearing"] + tests["heel_raise"] <= 1.0 + 1e-9  # the active = passive
    assert report.protocol == (pick(p) if chosen == "auto" else chosen)
    assert (report.advice is None) == (report.fit == "match")
    assert report.suggested_protocol != report.protocol
    if report.suggested_protocol is not None:
        assert report.fit == "mismatch"
    verdict = judge(20.0, MeasureOptions(protocol=chosen), RULES, 1.0, report)
    assert (verdict.label == "test-mismatch") == (report.fit == "mismatch")
    assert verdict.protocol == report.protocol


# ---- the edges, through the one pipeline: points placed as each test places the foot ------------------------

PLACED = {  # photo pixels of an upright 1600 x 1200 photo, heel -> toe
    "relaxed_standing": {"heel": [400, 880], "first_metatarsal": [800, 760], "first_mtp": [1150, 900],
                         "hallux_ip": [1280, 910], "hallux_tip": [1380, 915]},
    "weight_bearing": {"heel": [400, 880], "first_metatarsal": [800, 760], "first_mtp": [1150, 900],
                       "hallux_ip": [1260, 820], "hallux_tip": [1330, 760]},
    "heel_raise": {"heel": [600, 330], "first_metatarsal": [900, 600], "first_mtp": [1100, 886],
                   "hallux_ip": [1230, 890], "hallux_tip": [1330, 895]},
    "passive_nwb": {"heel": [650, 1080], "first_metatarsal": [760, 700], "first_mtp": [800, 350],
                    "hallux_ip": [950, 300], "hallux_tip": [1050, 280]},
    "lying_relaxed": {"heel": [650, 1080], "first_metatarsal": [760, 700], "first_mtp": [800, 350],
                      "hallux_ip": [820, 250], "hallux_tip": [840, 170]},
}
NO_HEEL = Landmarks.model_validate({"first_metatarsal": [905, 700], "first_mtp": [1240, 640], "hallux_ip": [1420, 520]})


def measured(placed: str | None, protocol: str = "passive_nwb"):
    """The answer for points placed as ``placed`` shows (None: no heel, so no posture)."""
    points = NO_HEEL if placed is None else Landmarks.model_validate(PLACED[placed])
    return Measurer(Settings(), detector=ManualPoints(points)).measure_landmarks(
        points, MeasureOptions(protocol=protocol), ImageInfo(width=1600, height=1200))


def test_batch_rows_carry_the_posture_and_read_back_from_csv_and_jsonl():
    result = measured("relaxed_standing")
    row = Row.from_result("a.jpg", 10, 1, result)
    assert row.verdict == "test-mismatch" and row.judged_by == "passive_nwb" and row.posture_fit == "mismatch"
    assert row.suggested_protocol == "weight_bearing" and row.standing == 0.7 and row.toe_resting > 0.99
    assert Row.from_csv(dict(zip(CSV_COLUMNS, row.csv_record()))) == row
    assert Row.from_json(row.json_line()) == row
    again = row.to_result()
    assert again.posture is not None and again.posture.fit == "mismatch" and again.verdict.label == "test-mismatch"
    auto = Row.from_result("b.jpg", 10, 1, measured("weight_bearing", "auto"))
    assert auto.protocol == "auto" and auto.judged_by == "weight_bearing" and auto.posture_fit == "match"
    assert auto.test_probability == pytest.approx(0.7, abs=0.01)
    plain = Row.from_result("c.jpg", 10, 1, measured(None))
    assert plain.judged_by == "passive_nwb" and plain.posture_fit is None and plain.standing is None


def test_the_batch_report_counts_tests_and_shows_the_fit():
    rows = [Row.from_result(f"{i}.jpg", 10, 1, measured(placed, protocol))
            for i, (placed, protocol) in enumerate([("relaxed_standing", "passive_nwb"), ("weight_bearing", "auto"),
                                                    (None, "passive_nwb")])]
    page = build_report(rows)
    assert "by test and posture fit" in page and "passive_nwb (mismatch)" in page and "weight_bearing (match)" in page
    assert "suggested weight_bearing" in page and "v-test-mismatch" in page
    assert "by test and posture fit" not in build_report(rows[2:])  # nothing about posture without one


def test_the_overlay_banner_says_what_the_photo_shows(tmp_path):
    rgb = np.full((600, 800, 3), 90, np.uint8)
    image = DecodedImage(rgb=rgb, original_width=1600, original_height=1200, format="PNG")
    mismatch, match = measured("relaxed_standing"), measured("passive_nwb")
    assert posture_banner(mismatch).startswith("photo shows a relaxed standing foot") \
        and "suggested: weight_bearing" in posture_banner(mismatch)
    assert posture_banner(match) is None and posture_banner(measured(None)) is None
    with_banner, without = draw_overlay(image, mismatch), draw_overlay(image, match)
    purple = np.all(with_banner == VERDICT_COLOURS["test-mismatch"], axis=-1).sum()
    assert purple > 200 and np.all(without == VERDICT_COLOURS["test-mismatch"], axis=-1).sum() == 0


def test_the_cli_text_says_the_posture_the_verdict_and_no_routine():
    text = format_result(measured("relaxed_standing"))
    assert "Verdict: test-mismatch (suggested test: weight_bearing, normal from 25 deg)" in text
    assert "Posture: a relaxed standing foot" in text and "mismatch with the passive_nwb test" in text
    assert "Routine" not in text and "Hallux dorsiflexion" in text
    assert "Posture" not in format_result(measured(None)) and "Routine" in format_result(measured(None))


def test_the_cli_takes_protocol_auto(marker_photo, tmp_path, capsys):
    photo = tmp_path / "foot.jpg"
    photo.write_bytes(marker_photo[0])
    assert main(["measure", str(photo), "--protocol", "auto", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["options"]["protocol"] == "auto" and result["detector"].startswith("markers")
    assert result["posture"] is not None, "sticker points show the posture as the model's do"
    assert result["verdict"]["protocol"] == result["posture"]["protocol"]
