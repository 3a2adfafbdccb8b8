"""Angle -> verdict: normal, borderline or restricted for the chosen test, with a grade."""

from __future__ import annotations

from .clinical import ClinicalRules
from .posture import protocol_for
from .schema import Grade, MeasureOptions, PostureReport, Verdict


def side_to_side_loss_pct(angle_deg: float, other_foot_angle_deg: float | None) -> float | None:
    """Loss of motion versus the other foot, in percent (0 when this toe bends as far or further)."""
    if other_foot_angle_deg is None or other_foot_angle_deg <= 0:
        return None
    return max(0.0, (other_foot_angle_deg - angle_deg) / other_foot_angle_deg * 100.0)


def _grade(rules: ClinicalRules, angle_deg: float, normal_min: float, loss_pct: float | None, pain: bool) -> Grade | None:
    """Coughlin & Shurnas: the worse of the angle-based and the loss-based grade ("and/or")."""
    by_angle = next((b for b in rules.bands if angle_deg < normal_min and angle_deg <= b.max_deg), None)
    by_loss = None if loss_pct is None else next((b for b in rules.bands if loss_pct >= b.min_loss_pct), None)
    candidates = [(b, basis) for b, basis in ((by_angle, "angle"), (by_loss, "side_to_side_loss")) if b is not None]
    if not candidates:
        return None
    band, basis = max(candidates, key=lambda c: c[0].grade)
    if pain and band.grade == rules.pain_from_grade:
        return Grade(system=rules.grade_system, grade=rules.pain_grade, description=rules.pain_description,
                     basis="angle_and_pain")
    return Grade(system=rules.grade_system, grade=band.grade, description=band.description, basis=basis)


def judge(angle_deg: float, options: MeasureOptions, rules: ClinicalRules,
          uncertainty_deg: float | None = None, posture: PostureReport | None = None) -> Verdict:
    """Compare the angle with the protocol's normal threshold.

    "borderline" when the uncertainty interval straddles the threshold: the photo cannot
    tell normal from restricted, and saying so beats a coin flip. "test-mismatch" when the
    photo's ``posture`` is not the test's: the angle is still compared, but no grade is given,
    since a threshold of another test says nothing about this photo.
    """
    protocol = protocol_for(options.protocol, posture)
    rule = rules.protocols[protocol]
    threshold = rule.normal_min_deg
    loss = side_to_side_loss_pct(angle_deg, options.other_foot_angle_deg)
    mismatch = posture is not None and posture.fit == "mismatch"
    grade = _grade(rules, angle_deg, threshold, loss, options.pain) if rule.graded and not mismatch else None

    if mismatch:
        label = "test-mismatch"
    elif uncertainty_deg is not None and abs(angle_deg - threshold) < uncertainty_deg:
        label = "borderline"
    elif angle_deg < threshold or grade is not None:
        label = "restricted"
    else:
        label = "normal"

    relation = "at or above" if angle_deg >= threshold else "below"
    summary = f"{angle_deg:.0f} deg is {relation} the {threshold:.0f} deg normal minimum for the {rule.title.lower()} test"
    if uncertainty_deg is not None:
        summary += f" (+/- {uncertainty_deg:.0f} deg)"
    if loss is not None:
        summary += f"; {loss:.0f}% less than the other foot"
    if grade is not None:
        summary += f"; {grade.system} grade {grade.grade}"
    summary += "."
    if options.protocol == "auto":
        summary = (f"Judged by the {rule.title.lower()} test, picked from the photo "
                   f"({posture.tests[protocol]:.0%} sure). " if posture is not None else
                   f"Judged by the {rule.title.lower()} test: protocol auto, but this photo gives no posture. ") + summary
    suggested = posture.suggested_protocol if mismatch else None
    if posture is not None and posture.advice:
        summary = f"{posture.advice} {summary}"
        if posture.switch_to is not None:  # the photo shows that test: what it would say by it
            other = rules.protocols[posture.switch_to].normal_min_deg
            summary += f" By the {rules.protocols[posture.switch_to].title.lower()} test it would be " \
                       f"{'normal' if angle_deg >= other else 'restricted'} (normal from {other:.0f} deg)."
    if mismatch and options.pain:  # no routine carries it on a mismatch
        summary += f" {rules.advice['pain']}"
    return Verdict(protocol=protocol, label=label, normal_min_deg=threshold, grade=grade,
                   suggested_protocol=suggested,
                   suggested_normal_min_deg=None if suggested is None else rules.protocols[suggested].normal_min_deg,
                   side_to_side_loss_pct=None if loss is None else round(loss, 1), summary=summary)
