"""Verdicts, grades and routines at the edges of every threshold in the clinical data file."""

import tomllib
from importlib import resources

import pytest

from toeangle.clinical import load_rules, parse_rules
from toeangle.routine import prescribe
from toeangle.schema import MeasureOptions
from toeangle.verdict import judge, side_to_side_loss_pct

RULES = load_rules()
THRESHOLDS = {"passive_nwb": 65.0, "active_nwb": 42.0, "weight_bearing": 25.0, "heel_raise": 42.0, "walking": 42.0,
              "running": 42.0}


def verdict(angle, protocol="passive_nwb", uncertainty=None, **options):
    return judge(angle, MeasureOptions(protocol=protocol, **options), RULES, uncertainty)


def test_every_protocol_has_its_threshold_and_a_source():
    assert {name: rule.normal_min_deg for name, rule in RULES.protocols.items()} == THRESHOLDS
    for rule in RULES.protocols.values():
        assert rule.source and rule.how and rule.title


@pytest.mark.parametrize("protocol", sorted(THRESHOLDS))
def test_threshold_edge_is_normal_and_just_below_is_restricted(protocol):
    edge = THRESHOLDS[protocol]
    assert verdict(edge, protocol).label == "normal"
    assert verdict(edge + 20, protocol).label == "normal"
    assert verdict(edge - 0.01, protocol).label == "restricted"
    assert verdict(edge, protocol).normal_min_deg == edge


@pytest.mark.parametrize("angle, grade", [
    (64.99, 0), (60, 0), (40.01, 0),
    (40, 1), (30.01, 1),
    (30, 2), (10.01, 2),
    (10, 3), (0, 3), (-15, 3),
])
def test_coughlin_shurnas_grades_by_angle(angle, grade):
    v = verdict(angle)
    assert v.grade is not None and v.grade.grade == grade and v.grade.basis == "angle"


def test_no_grade_when_normal_or_for_ungraded_protocols():
    assert verdict(65).grade is None
    for protocol in ("active_nwb", "weight_bearing", "heel_raise", "walking", "running"):
        assert verdict(5, protocol).grade is None


def test_pain_turns_grade_3_into_4_only():
    assert verdict(5, pain=True).grade.grade == 4
    assert verdict(5, pain=True).grade.basis == "angle_and_pain"
    assert verdict(20, pain=True).grade.grade == 2


@pytest.mark.parametrize("other, expected", [(80, 25.0), (60, 0.0), (None, None), (0, None)])
def test_side_to_side_loss(other, expected):
    assert side_to_side_loss_pct(60, other) == expected


@pytest.mark.parametrize("this, other, grade", [
    (70, 80, 0),     # 12.5% loss: grade 0 although the angle alone is normal
    (70, 90, 1),     # 22% loss
    (45, 100, 2),    # 55% loss beats the angle's grade 0
    (20, 100, 3),    # 80% loss beats the angle's grade 2
    (35, 38, 1),     # small loss: the angle's grade stands
])
def test_loss_against_the_other_foot_enters_the_grade(this, other, grade):
    v = verdict(this, other_foot_angle_deg=other)
    assert v.grade.grade == grade
    assert v.label == "restricted"
    assert v.side_to_side_loss_pct == pytest.approx(max(0, (other - this) / other * 100), abs=0.05)


def test_loss_below_ten_percent_keeps_a_normal_toe_normal():
    v = verdict(70, other_foot_angle_deg=75)
    assert v.label == "normal" and v.grade is None


@pytest.mark.parametrize("angle, uncertainty, label", [
    (63, 3, "borderline"), (67, 3, "borderline"), (61.5, 3, "restricted"), (68.5, 3, "normal"), (63, None, "restricted"),
])
def test_borderline_when_the_interval_straddles_the_threshold(angle, uncertainty, label):
    assert verdict(angle, uncertainty=uncertainty).label == label


STORY = ["ball_roll", "toe_mobilisation", "glute_strength", "wedge_calf_raise"]


def ids(routine):
    return [e.id for e in routine.exercises]


def test_normal_routine_leads_with_the_four_story_exercises():
    routine = prescribe(verdict(70), RULES)
    assert routine.severity == "normal" and not routine.see_clinician
    assert ids(routine)[:4] == STORY
    assert all(e.dose for e in routine.exercises)


def test_mild_restriction_gets_the_full_programme():
    routine = prescribe(verdict(50), RULES)
    assert routine.severity == "mild" and not routine.see_clinician
    assert set(STORY) <= set(ids(routine))
    assert {"plantar_fascia_stretch", "toe_yoga", "short_foot", "calf_stretch"} <= set(ids(routine))
    assert "4-week programme" in routine.advice


def test_severe_restriction_sends_to_a_clinician_without_loading_the_joint():
    routine = prescribe(verdict(5), RULES)
    assert routine.severity == "severe" and routine.see_clinician
    assert "toe_mobilisation" not in ids(routine) and "wedge_calf_raise" not in ids(routine)
    assert "ball_roll" in ids(routine)


def test_moderate_restriction_and_pain_see_a_clinician():
    assert prescribe(verdict(20), RULES).see_clinician
    routine = prescribe(verdict(50, pain=True), RULES, pain=True)
    assert routine.see_clinician and "clinician" in routine.advice


def test_ungraded_restriction_asks_for_the_passive_test():
    routine = prescribe(verdict(10, "weight_bearing"), RULES)
    assert routine.severity == "mild"
    assert "passive" in routine.advice


def test_every_routine_carries_the_disclaimer():
    for angle in (5, 20, 35, 50, 80):
        assert "not medical advice" in prescribe(verdict(angle), RULES).disclaimer


def test_a_clinician_override_file_changes_the_threshold(tmp_path):
    text = resources.files("toeangle").joinpath("data/clinical.toml").read_text()
    override = tmp_path / "clinical.toml"
    override.write_text(text.replace("normal_min_deg = 65.0", "normal_min_deg = 70.0"))
    rules = load_rules(override)
    assert judge(67, MeasureOptions(), rules).label == "restricted"


def test_inconsistent_grade_bands_are_refused():
    data = tomllib.loads(resources.files("toeangle").joinpath("data/clinical.toml").read_text())
    data["grades"]["bands"][1]["max_deg"] = data["grades"]["bands"][0]["max_deg"]
    with pytest.raises(ValueError, match="distinct"):
        parse_rules(data)
