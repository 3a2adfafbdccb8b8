"""Verdict -> routine: which exercises, in which order, and when to see a clinician."""

from __future__ import annotations

from .clinical import ClinicalRules
from .schema import Routine, Verdict


def severity_of(verdict: Verdict, rules: ClinicalRules) -> str:
    if verdict.grade is not None:
        return rules.severity_by_grade[verdict.grade.grade]
    if verdict.label == "normal":
        return "normal"
    # Restricted or borderline without a grade: the gentle programme is safe either way.
    return rules.restricted_ungraded


def prescribe(verdict: Verdict, rules: ClinicalRules, pain: bool = False) -> Routine:
    """The data file's exercises for this severity, in the file's order of priority."""
    ungraded = verdict.label != "normal" and not rules.protocols[verdict.protocol].graded
    return routine_for(severity_of(verdict, rules), rules, ungraded=ungraded, pain=pain)


def routine_for(severity: str, rules: ClinicalRules, ungraded: bool = False, pain: bool = False) -> Routine:
    """The routine of one severity; ``ungraded`` adds the advice to take the graded (passive) test too."""
    exercises = tuple(e for e, severities in rules.exercises if severity in severities)
    advice = [rules.advice[severity]]
    if ungraded:
        advice.append(rules.advice["ungraded"])
    if severity in rules.programme_for:
        advice.append(rules.programme)
    if pain:
        advice.append(rules.advice["pain"])
    return Routine(
        severity=severity,
        exercises=exercises,
        see_clinician=pain or severity in rules.see_clinician,
        advice=" ".join(advice),
        disclaimer=rules.advice["disclaimer"],
    )
