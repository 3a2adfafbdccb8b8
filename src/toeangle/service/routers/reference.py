"""Reference data: the test positions with their normal values, and the routine of each severity."""

from __future__ import annotations

from dataclasses import asdict
from typing import get_args

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...routine import routine_for
from ...schema import Protocol, Routine
from ..deps import RulesDep
from ..problems import problem_responses

router = APIRouter(prefix="/v1", tags=["reference"], responses=problem_responses(401))


class ProtocolInfo(BaseModel):
    name: Protocol
    title: str
    how: str
    normal_min_deg: float
    source: str
    graded: bool = Field(description="Whether Coughlin & Shurnas grades apply to this test")


@router.get("/protocols", operation_id="reference-protocols", response_model=list[ProtocolInfo],
            summary="The test positions and their normal values")
async def protocols(rules: RulesDep):
    return [ProtocolInfo(**asdict(p)) for p in rules.protocols.values()]


@router.get("/routines", operation_id="reference-routines", response_model=list[Routine],
            summary="The exercise routine of each severity")
async def routines(rules: RulesDep):
    return [routine_for(severity, rules) for severity in get_args(Routine.model_fields["severity"].annotation)]
