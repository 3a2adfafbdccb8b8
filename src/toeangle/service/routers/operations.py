"""Operations: liveness (/healthz) and readiness (/readyz) for an orchestrator."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ... import __version__
from ..deps import PoolDep, SettingsDep
from ..problems import ServiceProblem, problem_responses

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str = Field(examples=["alive"])
    version: str = __version__


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    workers: int
    in_flight: int
    capacity: int


@router.get("/healthz", operation_id="operations-health", response_model=Health,
            summary="Alive (the process answers)")
async def healthz():
    return Health(status="alive")


@router.get("/readyz", operation_id="operations-ready", response_model=Readiness,
            summary="Ready: every worker has built its Measurer and measured once",
            responses=problem_responses(503))
async def readyz(pool: PoolDep, settings: SettingsDep):
    if not pool.ready:
        raise ServiceProblem(503, "not-ready", "Not ready", pool.error or "the workers are still starting",
                             headers={"Retry-After": "2"})
    return Readiness(status="ready", workers=settings.workers, in_flight=pool.in_flight, capacity=pool.capacity)
