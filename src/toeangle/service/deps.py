"""Everything a route depends on, in one place: settings, the worker pool, the points measurer,
the API key check, admission and the request body.

The app keeps one of each on ``app.state`` (create_app builds them); routes ask for them by
type (``SettingsDep``, ``PoolDep``, ...), the FastAPI full-stack template's shape.

The order is the defence: the key is checked (router dependency) before a place is taken
(admission), and a place before the body is read, and the body is read under a size limit
and a deadline. So a client without a key costs nothing but its refusal, and stalled
uploads cannot hold places for longer than TOEANGLE_BODY_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import ClientDisconnect

from ..clinical import ClinicalRules
from ..pipeline import Measurer
from ..settings import Settings
from .problems import ClientGone, Refusal, ServiceProblem
from .uploads import DRAIN_FACTOR, MULTIPART_OVERHEAD, content_length
from .workers import Overloaded, Ticket, WorkerPool

LANDMARKS_BODY_BYTES = 64 * 1024
"""Largest from-landmarks body: a few points and options are well under 2 kB."""

LANDMARKS_AT_ONCE = 32
"""from-landmarks requests read or measured at once (each is microseconds of arithmetic)."""


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pool(request: Request) -> WorkerPool:
    return request.app.state.pool


def get_points_measurer(request: Request) -> Measurer:
    """The service process's own Measurer: it measures given points (pure math), never photos."""
    return request.app.state.points_measurer


def get_rules(measurer: Annotated[Measurer, Depends(get_points_measurer)]) -> ClinicalRules:
    return measurer.rules


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[WorkerPool, Depends(get_pool)]
PointsMeasurerDep = Annotated[Measurer, Depends(get_points_measurer)]
RulesDep = Annotated[ClinicalRules, Depends(get_rules)]

# ---- the key ------------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="Needed only when TOEANGLE_API_KEYS is set")


async def require_key(settings: SettingsDep,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    if not settings.api_keys:
        return
    given = (credentials.credentials if credentials else "").encode()
    if not any(hmac.compare_digest(given, key.encode()) for key in settings.api_keys):
        raise Refusal(401, "unauthorized", "Missing or wrong API key",
                      "send Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"})


def key_dependencies(settings: Settings) -> list:
    """The API key check for the /v1 routers; declared (and in the OpenAPI document) only when keys are
    configured: an open service has no security scheme. Router dependencies run before a route's own."""
    return [Depends(require_key)] if settings.api_keys else []


# ---- admission ------------------------------------------------------------------------------

async def photo_ticket(pool: PoolDep) -> AsyncIterator[Ticket]:
    """A worker-pool place, taken before the photo is read; given back when the worker has finished
    the job, or at the end of the request if it never reached a worker (bad input)."""
    try:
        ticket = pool.admit()
    except Overloaded as exc:
        raise Refusal(503, "overloaded", "Service busy", str(exc),
                      headers={"Retry-After": str(exc.retry_after_s)}) from None
    try:
        yield ticket
    finally:
        if not ticket.handed_to_worker:
            ticket.release()


class Places:
    """At most ``capacity`` requests of one kind at once; one more is refused (503), never queued."""

    def __init__(self, capacity: int):
        self.capacity, self.taken = capacity, 0


async def landmarks_place(request: Request) -> AsyncIterator[None]:
    places: Places = request.app.state.landmarks_places
    if places.taken >= places.capacity:
        raise Refusal(503, "overloaded", "Service busy", "too many landmark requests at once; retry in 1 s",
                      headers={"Retry-After": "1"})
    places.taken += 1
    try:
        yield
    finally:
        places.taken -= 1


TicketDep = Annotated[Ticket, Depends(photo_ticket)]

# ---- the body ---------------------------------------------------------------------------------


async def read_body(request: Request, limit: int, timeout_s: float, allowed: str) -> bytes:
    """The whole body in memory, counted as it arrives (Content-Length is checked, not trusted).

    Over ``limit``: 413, whose message says ``allowed`` (the rest is read and dropped up to DRAIN_FACTOR times the limit, so that the
    client hears it).
    Not all there within ``timeout_s``: 408. The client gone: ClientGone.
    """
    declared = content_length(request.scope)
    if declared is not None and declared > limit:
        raise Refusal(413, "upload-too-large", "Upload too large",
                      f"the request body is {declared:,} bytes; the limit is {allowed}")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
                    continue
                chunks.clear()  # keep nothing of an oversized body; read and drop the rest up to a bound
                if size > limit * DRAIN_FACTOR:
                    break
    except TimeoutError:
        if size <= limit:
            raise ServiceProblem(408, "body-timeout", "Request body too slow",
                                 f"the request body did not arrive within {timeout_s:g} s",
                                 headers={"Connection": "close"}) from None
    except ClientDisconnect:
        raise ClientGone(f"the client left after sending {size:,} bytes of the body") from None
    if size > limit:
        raise ServiceProblem(413, "upload-too-large", "Upload too large",
                             f"the request body is over the limit of {allowed}", headers={"Connection": "close"})
    return b"".join(chunks)


async def photo_body(request: Request, settings: SettingsDep, ticket: TicketDep) -> bytes:
    """The photo form's bytes, read once this request holds a place (``ticket``)."""
    return await read_body(request, settings.max_upload_bytes + MULTIPART_OVERHEAD, settings.body_timeout_s,
                           f"{settings.max_upload_bytes:,} bytes for the photo (TOEANGLE_MAX_UPLOAD_BYTES)")


async def video_body(request: Request, settings: SettingsDep, ticket: TicketDep) -> bytes:
    """The clip form's bytes, read once this request holds a place (``ticket``)."""
    return await read_body(request, settings.video_max_upload_bytes + MULTIPART_OVERHEAD, settings.body_timeout_s,
                           f"{settings.video_max_upload_bytes:,} bytes for the clip (TOEANGLE_VIDEO_MAX_UPLOAD_BYTES)")


async def landmarks_body(request: Request, settings: SettingsDep,
                         _: Annotated[None, Depends(landmarks_place)]) -> bytes:
    return await read_body(request, LANDMARKS_BODY_BYTES, settings.body_timeout_s, f"{LANDMARKS_BODY_BYTES:,} bytes")


PhotoBodyDep = Annotated[bytes, Depends(photo_body)]
VideoBodyDep = Annotated[bytes, Depends(video_body)]
LandmarksBodyDep = Annotated[bytes, Depends(landmarks_body)]
