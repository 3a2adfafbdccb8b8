"""The clinical rule book: thresholds, grades and routines, read from one TOML data file.

Numbers live in data (src/toeangle/data/clinical.toml, each with its source) rather than
in code, so a clinician can review them and ship an override without touching Python.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .schema import Exercise


@dataclass(frozen=True)
class ProtocolRule:
    name: str
    title: str
    how: str
    normal_min_deg: float
    source: str
    graded: bool


@dataclass(frozen=True)
class GradeBand:
    grade: int
    max_deg: float
    min_loss_pct: float
    description: str


@dataclass(frozen=True)
class ClinicalRules:
    protocols: dict[str, ProtocolRule]
    grade_system: str
    grade_source: str
    bands: tuple[GradeBand, ...]  # most severe first
    pain_grade: int
    pain_from_grade: int
    pain_description: str
    severity_by_grade: dict[int, str]
    restricted_ungraded: str
    see_clinician: frozenset[str]
    advice: dict[str, str]
    exercises: tuple[tuple[Exercise, frozenset[str]], ...]
    programme: str
    programme_for: frozenset[str]


def parse_rules(data: dict) -> ClinicalRules:
    """Validate the raw TOML tree into rules; a bad override fails loudly at start-up."""
    protocols = {
        name: ProtocolRule(name=name, title=p["title"], how=p["how"], normal_min_deg=float(p["normal_min_deg"]),
                           source=p["source"], graded=bool(p["graded"]))
        for name, p in data["protocols"].items()
    }
    bands = tuple(sorted(
        (GradeBand(int(b["grade"]), float(b["max_deg"]), float(b["min_loss_pct"]), b["description"])
         for b in data["grades"]["bands"]),
        key=lambda b: b.max_deg,
    ))
    if [b.max_deg for b in bands] != sorted({b.max_deg for b in bands}):
        raise ValueError("grade bands need distinct max_deg values")
    exercises = tuple(
        (Exercise(id=e["id"], name=e["name"], how=e["how"], dose=e["dose"], source=e["source"]), frozenset(e["for"]))
        for e in data["exercises"]
    )
    severity = data["severity"]
    return ClinicalRules(
        protocols=protocols,
        grade_system=data["grades"]["system"],
        grade_source=data["grades"]["source"],
        bands=bands,
        pain_grade=int(data["grades"]["pain"]["grade"]),
        pain_from_grade=int(data["grades"]["pain"]["from_grade"]),
        pain_description=data["grades"]["pain"]["description"],
        severity_by_grade={int(k): v for k, v in severity["by_grade"].items()},
        restricted_ungraded=severity["restricted_ungraded"],
        see_clinician=frozenset(severity["see_clinician"]),
        advice=dict(data["advice"]),
        exercises=exercises,
        programme=f'{data["programme"]["text"]} ({data["programme"]["source"]})',
        programme_for=frozenset(data["programme"]["for"]),
    )


@lru_cache(maxsize=4)
def load_rules(path: Path | None = None) -> ClinicalRules:
    """The packaged rules, or a clinician's override file."""
    if path is None:
        text = resources.files("toeangle").joinpath("data/clinical.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_rules(tomllib.loads(text))
