"""Everything a route depends on, in one place: settings, the worker pool, the points measurer,
the API key check and admission.

The app keeps one of each on ``app.state`` (create_app builds them); routes ask for them by
type (``SettingsDep``, ``PoolDep``, ...), the FastAPI full-stack template's shape.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..clinical import ClinicalRules
from ..pipeline import Measurer
from ..settings import Settings
from .problems import ServiceProblem
from .uploads import drain, problem_bytes, send_problem
from .workers import Overloaded, Ticket, WorkerPool


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pool(request: Request) -> WorkerPool:
    return request.app.state.pool


def get_points_measurer(request: Request) -> Measurer:
    """The service process's own Measurer: it measures given points (pure math), never photos."""
    return request.app.state.points_measurer


def get_rules(measurer: Annotated[Measurer, Depends(get_points_measurer)]) -> ClinicalRules:
    return measurer.rules


def get_ticket(request: Request) -> Ticket:
    """The worker-pool place Admission took for this photo request."""
    return request.state.ticket


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[WorkerPool, Depends(get_pool)]
PointsMeasurerDep = Annotated[Measurer, Depends(get_points_measurer)]
RulesDep = Annotated[ClinicalRules, Depends(get_rules)]
TicketDep = Annotated[Ticket, Depends(get_ticket)]

bearer = HTTPBearer(auto_error=False, description="Needed only when TOEANGLE_API_KEYS is set")


async def require_key(settings: SettingsDep,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    if not settings.api_keys:
        return
    given = (credentials.credentials if credentials else "").encode()
    if not any(hmac.compare_digest(given, key.encode()) for key in settings.api_keys):
        raise ServiceProblem(401, "unauthorized", "Missing or wrong API key",
                             "send Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"})


def key_dependencies(settings: Settings) -> list:
    """The API key check for the /v1 routers; declared (and in the OpenAPI document) only when keys are
    configured: an open service has no security scheme."""
    return [Depends(require_key)] if settings.api_keys else []


PHOTO_PATHS = ("/v1/measurements", "/v1/measurements/overlay")


class Admission:
    """Pure ASGI middleware: photo requests take a worker-pool ticket before their body is read.

    When every worker is busy and the queue is full, the answer is an immediate 503 with
    Retry-After (the body is read and dropped, not parsed or kept), so overload costs little
    and never turns into unbounded latency. The ticket is given back when the worker finishes
    the job, or at the end of the request if it never reached a worker (bad input, auth).
    """

    def __init__(self, app, pool: WorkerPool, drain_cap: int):
        self.app, self.pool, self.drain_cap = app, pool, drain_cap

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PHOTO_PATHS:
            return await self.app(scope, receive, send)
        try:
            ticket = self.pool.admit()
        except Overloaded as exc:
            if await drain(scope, receive, self.drain_cap):
                body = problem_bytes(503, "overloaded", "Service busy", str(exc), scope["path"],
                                     scope.get("state", {}).get("request_id"))
                await send_problem(scope, send, 503, body, {"Retry-After": str(exc.retry_after_s)})
            return
        scope.setdefault("state", {})["ticket"] = ticket
        try:
            await self.app(scope, receive, send)
        finally:
            if not ticket.handed_to_worker:
                ticket.release()
