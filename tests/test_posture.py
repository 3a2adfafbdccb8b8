"""The posture rule: each protocol's match and mismatch, the confidence thresholds, `auto`, and the
verdict each gives. Postures are constructed here (the model's own readings are measured by
bench/posture.py and by the end-to-end tests in test_posture_photos.py)."""

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toeangle.clinical import load_rules
from toeangle.posture import MATCH_MIN, MISMATCH_MAX, assess, pick, protocol_probabilities
from toeangle.routine import prescribe
from toeangle.schema import MeasureOptions, Posture, Protocol
from toeangle.verdict import judge

RULES = load_rules()
PROTOCOLS = get_args(Protocol.__value__)


def posture(standing: float, heel_raised: float = 0.02, toe: str = "resting", sure: float = 0.96) -> Posture:
    rest = (1 - sure) / 2
    return Posture(standing=standing, heel_raised=heel_raised,
                   toe={state: sure if state == toe else rest for state in ("held", "lifted", "resting")})


# Each test as a photo of it shows it, confidently.
SHOWS = {
    "passive_nwb": posture(0.03, toe="held"),
    "active_nwb": posture(0.03, toe="lifted"),
    "weight_bearing": posture(0.97, toe="held"),
    "heel_raise": posture(0.97, heel_raised=0.95, toe="resting"),
}
RELAXED_STANDING = posture(0.97, toe="resting")
RELAXED_SEATED = posture(0.03, toe="resting")


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
    if chosen == shown:
        return
    report = assess(SHOWS[shown], chosen, RULES)
    assert report.fit == "mismatch" and report.suggested_protocol == shown
    verdict = judge(30.0, MeasureOptions(protocol=chosen), RULES, 2.0, report)
    assert verdict.label == "test-mismatch" and verdict.protocol == chosen and verdict.grade is None
    assert verdict.suggested_protocol == shown
    assert verdict.suggested_normal_min_deg == RULES.protocols[shown].normal_min_deg
    assert verdict.normal_min_deg == RULES.protocols[chosen].normal_min_deg
    assert "30 deg" in verdict.summary and report.advice in verdict.summary  # the angle is still reported


def test_a_relaxed_standing_foot_under_the_passive_test_says_so_and_suggests_weight_bearing():
    report = assess(RELAXED_STANDING, "passive_nwb", RULES)
    assert report.fit == "mismatch" and report.suggested_protocol == "weight_bearing"
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


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auto_picks_the_test_the_photo_shows_and_says_how_sure(protocol):
    report = assess(SHOWS[protocol], "auto", RULES)
    assert report.protocol == protocol == pick(SHOWS[protocol]) and report.fit == "match"
    verdict = judge(50.0, MeasureOptions(protocol="auto"), RULES, 2.0, report)
    assert verdict.protocol == protocol and verdict.label in ("normal", "restricted", "borderline")
    assert f"({report.tests[protocol]:.0%} sure)" in verdict.summary


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
    """Passive test, toe held surely (0.96): the test's probability is (1 - standing) * 0.96."""
    report = assess(posture(standing, toe="held"), "passive_nwb", RULES)
    p = report.tests["passive_nwb"]
    assert report.fit == fit
    assert (p >= MATCH_MIN) == (fit == "match") and (p <= MISMATCH_MAX) == (fit == "mismatch")


def test_unsure_keeps_the_label_and_adds_the_doubt_to_the_summary():
    report = assess(posture(0.6, toe="held"), "passive_nwb", RULES)
    verdict = judge(30.0, MeasureOptions(), RULES, 2.0, report)
    assert report.fit == "unsure" and verdict.label == "restricted" and verdict.grade is not None
    assert "may not be a photo of the passive" in verdict.summary


def test_a_mismatch_gets_no_routine_grade_or_pain_grade():
    report = assess(RELAXED_STANDING, "passive_nwb", RULES)
    verdict = judge(5.0, MeasureOptions(pain=True), RULES, 2.0, report)
    assert verdict.label == "test-mismatch" and verdict.grade is None
    assert prescribe(judge(5.0, MeasureOptions(pain=True), RULES, 2.0), RULES, pain=True).see_clinician


probabilities = st.floats(0.0, 1.0)


@given(probabilities, probabilities, probabilities, probabilities, st.sampled_from((*PROTOCOLS, "auto")))
def test_any_posture_gives_a_consistent_report(standing, heel, held, lifted, chosen):
    total = held + lifted + 1.0
    p = Posture(standing=standing, heel_raised=heel, toe={"held": held / total, "lifted": lifted / total,
                                                          "resting": 1.0 / total})
    report = assess(p, chosen, RULES)
    tests = protocol_probabilities(p)
    assert all(0.0 <= v <= 1.0 + 1e-9 for v in tests.values()) and sum(tests.values()) <= 1.0 + 1e-9
    assert report.protocol == (pick(p) if chosen == "auto" else chosen)
    assert (report.advice is None) == (report.fit == "match")
    assert report.suggested_protocol != report.protocol
    if report.suggested_protocol is not None:
        assert report.fit == "mismatch"
    verdict = judge(20.0, MeasureOptions(protocol=chosen), RULES, 1.0, report)
    assert (verdict.label == "test-mismatch") == (report.fit == "mismatch")
    assert verdict.protocol == report.protocol
