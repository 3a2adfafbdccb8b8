"""Posture -> test: which test position a photo shows, and whether that is the test it is judged by.

Each protocol is a posture (../shared/reference/clinical.md, data/clinical.toml): the passive test
is seated or lying with the toe pushed back by hand, the active test seated with the toe lifted by
the person, the weight-bearing (Jack) test standing, heel down, the toe lifted, the heel raise
standing on the balls of the feet. posture_reading.py reads three probabilities from the landmarks
(standing, heel raised, the toe's state); a test's probability is their product over what it needs.
A relaxed foot with the toe resting is no test at all: its angle says nothing about how far the toe
bends, so every test mismatches it. Walking and running are movements a clip shows, not a still
posture: a photo judged by one of them is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clinical import ClinicalRules
from .schema import DEFAULT_PROTOCOL, Posture, PostureReport, Protocol, ProtocolChoice

MATCH_MIN = 0.5
"""A test at least this probable is a match: today's verdict, nothing said."""
MISMATCH_MAX = 0.2
"""A test at most this probable is a mismatch: the photo shows something else (test-mismatch)."""
SURE = 0.8
"""A yes/no probability at least this (or at most 1 - this) is stated as seen. Standing is the exception:
weight does not show, so a foot placed as a standing foot is (at least MATCH_MIN) is said to look standing."""
TOE_SURE = 0.6
"""The toe's more probable state is stated as seen from this probability."""


@dataclass(frozen=True)
class ProtocolPosture:
    """What a test's photo shows; None where the test does not care."""

    standing: bool
    heel_raised: bool | None
    toe: frozenset[str] | None
    needs: str  # for the sentence "the ... test needs ..."


PROTOCOL_POSTURES: dict[str, ProtocolPosture] = {
    "passive_nwb": ProtocolPosture(False, None, frozenset({"raised"}),
                                   "the foot off the floor (seated or lying) and the big toe pushed back by hand"),
    "active_nwb": ProtocolPosture(False, None, frozenset({"raised"}),
                                  "the foot off the floor (seated) and the big toe lifted by its own muscles"),
    "weight_bearing": ProtocolPosture(True, False, frozenset({"raised"}),
                                      "standing, heel down, with a helper lifting the big toe until the arch rises"),
    "heel_raise": ProtocolPosture(True, True, None, "standing up on the balls of the feet, heels raised"),
}
"""Who bends the toe back (a hand, an object, the person) does not show in the points, so the passive and
the active test look alike: `auto` judges a raised toe off the floor by the passive test, the default.
The weight-bearing test also takes a toe the person lifts (Nawoczenski's active weight-bearing test, about
44 deg typical): it reads above the Jack test's 25 deg cut-off, so it is not misjudged. Under a raised
heel the floor bends the toe, so the heel raise takes any toe state."""

TOE_WORDS = {"raised": "the big toe bent back", "resting": "the big toe resting"}


def _yes(probability: float, wanted: bool | None) -> float:
    return 1.0 if wanted is None else probability if wanted else 1.0 - probability


def position_probability(posture: Posture, test: ProtocolPosture) -> float:
    """Probability that the foot is placed as the test needs (standing or not, heel), whatever the toe."""
    heel = test.heel_raised if test.standing else None
    return _yes(posture.standing, test.standing) * _yes(posture.heel_raised, heel)


def protocol_probabilities(posture: Posture) -> dict[Protocol, float]:
    """Probability that the photo shows each test: its position times its toe state."""
    return {name: position_probability(posture, test)
            * (1.0 if test.toe is None else sum(posture.toe.get(state, 0.0) for state in test.toe))
            for name, test in PROTOCOL_POSTURES.items()}


def pick(posture: Posture) -> Protocol:
    """The test the photo shows (for protocol `auto`): the most probable one; when none is probable (a
    resting toe), the one whose position fits, so that the answer says what to change."""
    tests = protocol_probabilities(posture)
    best = max(tests, key=tests.__getitem__)
    if tests[best] >= MATCH_MIN:
        return best
    return max(PROTOCOL_POSTURES, key=lambda name: position_probability(posture, PROTOCOL_POSTURES[name]))


def describe(posture: Posture) -> str:
    """What the photo shows, in words; only what the probabilities say surely."""
    toe, toe_p = max(posture.toe.items(), key=lambda item: item[1])
    toe_words = TOE_WORDS[toe] if toe_p >= TOE_SURE else "the big toe's state unclear"
    if posture.standing >= MATCH_MIN:
        if posture.heel_raised >= SURE:
            return f"a foot standing on its toes, heel raised, {toe_words}"
        if posture.heel_raised <= 1 - SURE and toe == "resting" and toe_p >= TOE_SURE:
            return f"a relaxed standing foot, {toe_words}"
        return f"a standing foot, {toe_words}"
    if posture.standing <= 1 - SURE:
        return f"a foot off the floor, {toe_words}"
    return f"a foot (standing or not: unclear), {toe_words}"


def assess(posture: Posture, chosen: ProtocolChoice, rules: ClinicalRules) -> PostureReport | None:
    """The posture against the chosen test (or the one `auto` picks): match, unsure or mismatch,
    the test the photo fits instead, and the sentence that says so; None for a movement (walking,
    running), which no posture shows."""
    if chosen != "auto" and chosen not in PROTOCOL_POSTURES:
        return None
    protocol: Protocol = pick(posture) if chosen == "auto" else chosen
    tests = protocol_probabilities(posture)
    seen = describe(posture)
    title = rules.protocols[protocol].title.lower()
    if tests[protocol] >= MATCH_MIN:
        return PostureReport(**posture.model_dump(), seen=seen, tests=_rounded(tests), protocol=protocol, fit="match")
    if tests[protocol] > MISMATCH_MAX:
        return PostureReport(**posture.model_dump(), seen=seen, tests=_rounded(tests), protocol=protocol, fit="unsure",
                             advice=f"This may not be a photo of the {title} test ({tests[protocol]:.0%} sure it is; "
                                    f"it looks like {seen}): the test needs {PROTOCOL_POSTURES[protocol].needs}.")
    suggested = _suggest(posture, protocol, tests)
    # the photo shows the suggested test: this same photo can be judged by it
    switch_to = suggested if suggested is not None and tests[suggested] >= MATCH_MIN else None
    advice = f"This looks like {seen}; the {title} test needs {PROTOCOL_POSTURES[protocol].needs}."
    if suggested is None:
        advice += " Retake the photo in that position."
    elif switch_to is not None:
        rule = rules.protocols[suggested]
        advice += (f" It fits the {rule.title.lower()} test (normal from {rule.normal_min_deg:.0f} deg): choose that "
                   f"test, or retake the photo for the {title} test.")
    else:  # placed as the suggested test needs, but its toe is not set for it either
        rule = rules.protocols[suggested]
        advice += (f" It is placed for the {rule.title.lower()} test (normal from {rule.normal_min_deg:.0f} deg), "
                   f"which needs {PROTOCOL_POSTURES[suggested].needs}: retake the photo for that test or for the "
                   f"{title} test.")
    return PostureReport(**posture.model_dump(), seen=seen, tests=_rounded(tests), protocol=protocol, fit="mismatch",
                         suggested_protocol=suggested, switch_to=switch_to, advice=advice)


def _suggest(posture: Posture, protocol: Protocol, tests: dict[Protocol, float]) -> Protocol | None:
    """Another test the photo shows surely; or, when the foot is not placed as the chosen test needs,
    the test whose placement it has (the toe to be set as that test says)."""
    others = [name for name in PROTOCOL_POSTURES if name != protocol]
    best = max(others, key=tests.__getitem__)
    if tests[best] >= MATCH_MIN:
        return best
    if position_probability(posture, PROTOCOL_POSTURES[protocol]) >= MATCH_MIN:
        return None  # placed right; only the toe is not set for the test
    placed = max(others, key=lambda name: position_probability(posture, PROTOCOL_POSTURES[name]))
    return placed if position_probability(posture, PROTOCOL_POSTURES[placed]) >= MATCH_MIN else None


def protocol_for(chosen: ProtocolChoice, report: PostureReport | None) -> Protocol:
    """The test a photo is judged by: the chosen one, the one `auto` picked, or the default for `auto`
    without a posture (skin markers, given points)."""
    if report is not None:
        return report.protocol
    return DEFAULT_PROTOCOL if chosen == "auto" else chosen


def _rounded(tests: dict[Protocol, float]) -> dict[Protocol, float]:
    return {name: round(p, 3) for name, p in tests.items()}
