"""Operations: liveness (/healthz) and readiness (/readyz) for an orchestrator."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ... import __version__
from ..deps import PoolDep
from ..problems import ServiceProblem, problem_responses

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str = Field(examples=["alive"])
    version: str = __version__


class Readiness(BaseModel):
    status: str = Field(examples=["ready"], description="ready (every worker is up) or degraded (some are "
                                                        "restarting after a crash; requests are still served)")
    workers: int = Field(description="Workers up and warm now")
    in_flight: int
    capacity: int


@router.get("/healthz", operation_id="operations-health", response_model=Health,
            summary="Alive: the process answers and its worker pool can heal (restart this service if not)",
            responses=problem_responses(503))
async def healthz(pool: PoolDep):
    if pool.broken:
        raise ServiceProblem(503, "broken", "Cannot heal", pool.error)
    return Health(status="alive")


@router.get("/readyz", operation_id="operations-ready", response_model=Readiness,
            summary="Ready: at least one worker has built its Measurer and measured once",
            responses=problem_responses(503))
async def readyz(pool: PoolDep):
    workers = pool.workers_ready
    if pool.broken or not workers:
        why = pool.error or (f"no worker is up: restarting after a crash ({pool.crashes} so far)" if pool.crashes
                             else "the workers are still starting")
        raise ServiceProblem(503, "not-ready", "Not ready", why, headers={"Retry-After": "2"})
    return Readiness(status="ready" if pool.ready else "degraded", workers=workers, in_flight=pool.in_flight,
                     capacity=pool.capacity)
