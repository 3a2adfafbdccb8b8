"""The HTTP service: a thin edge that translates HTTP to the Measurer (in worker processes) and back.

    create_app(settings) -> FastAPI

The routes live in routers/ (one module per resource), what they depend on in deps.py;
this module builds the app: its state, lifespan, middleware and metrics. Photos are read
into memory (never to disk), measured in a bounded pool of worker processes, and answered
as the schema's own models; every failure is problem+json (problems.py). `toeangle serve`
and the Docker image both run this app.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_fastapi_instrumentator import Instrumentator

from .. import __version__
from ..settings import Settings, get_settings
from . import openapi, problems
from .deps import LANDMARKS_AT_ONCE, Places, key_dependencies
from .routers import measurements, operations, reference, videos, web
from .workers import WorkerPool

log = logging.getLogger("toeangle.service")
access_log = logging.getLogger("toeangle.access")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    pool = WorkerPool(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        warm = asyncio.create_task(_start(pool))
        yield
        # uvicorn has already stopped accepting and waited for in-flight requests
        warm.cancel()
        await asyncio.to_thread(pool.shutdown)
        log.info("workers stopped")

    app = FastAPI(
        title="toeangle",
        version=__version__,
        summary="Big-toe dorsiflexion from a side-on foot photo: angle, verdict, grade and routine.",
        description="Versioned under /v1. Errors are RFC 9457 problem+json (`application/problem+json`). "
                    "Coordinates are pixels of the original upright photo. See docs/service.md.",
        lifespan=lifespan,
        openapi_tags=[{"name": "measurements"}, {"name": "reference"}, {"name": "operations"}],
        docs_url=None, redoc_url=None,  # Swagger UI is served from the package (routers/web.py), not a CDN
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.points_measurer = measurements.points_measurer(settings)
    app.state.landmarks_places = Places(LANDMARKS_AT_ONCE)
    problems.install(app)

    secured = key_dependencies(settings)
    app.include_router(measurements.router, dependencies=secured)
    app.include_router(videos.router, dependencies=secured)
    app.include_router(reference.router, dependencies=secured)
    app.include_router(operations.router)
    app.include_router(web.router)
    web.mount_files(app)
    openapi.install(app, schemas=measurements.BODY_SCHEMAS)

    registry = CollectorRegistry()
    registry.register(_PoolCollector(pool))
    Instrumentator(registry=registry, excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(app).expose(
        app, include_in_schema=False)

    # Order, outermost first: request id + log, security headers, CORS (so browsers can read every error),
    # the app (whose dependencies check the key, then admit, then read the body: deps.py).
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After", "X-Toeangle-Status", "X-Toeangle-Angle",
                                           "X-Toeangle-Verdict"], max_age=600)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)
    return app


async def _start(pool: WorkerPool) -> None:
    try:
        started = time.perf_counter()
        await pool.start()
        log.info("workers ready", extra={"workers": pool.settings.workers,
                                         "startup_s": round(time.perf_counter() - started, 2)})
    except Exception as exc:
        log.error("workers failed to start", extra={"error": f"{type(exc).__name__}: {exc}"})


class _PoolCollector:
    def __init__(self, pool: WorkerPool):
        self.pool = pool

    def collect(self):
        pool = self.pool
        yield GaugeMetricFamily("toeangle_in_flight", "Measurements running or queued", value=pool.in_flight)
        yield GaugeMetricFamily("toeangle_capacity", "Workers plus queue size", value=pool.capacity)
        yield GaugeMetricFamily("toeangle_workers_ready", "Workers up and warm", value=pool.workers_ready)
        yield CounterMetricFamily("toeangle_worker_crashes", "Workers that died and were replaced", value=pool.crashes)
        yield CounterMetricFamily("toeangle_rejected", "Requests refused with 503 (queue full)", value=pool.rejected)
        yield CounterMetricFamily("toeangle_timeouts", "Requests that ran out of time (504)", value=pool.timed_out)


class SecurityHeaders:
    """Pure ASGI middleware: the page and Swagger UI load only the service's own files, and no site may frame them."""

    HEADERS = [
        (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                                     b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestContext:
    """Pure ASGI middleware: a request id for every request (X-Request-ID in and out) and one JSON log line each."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            extra = {"request_id": request_id, "method": scope["method"],
                     "route": getattr(route, "path", None) or scope["path"], "status": status,
                     "duration_ms": round((time.perf_counter() - started) * 1e3, 1),
                     **scope["state"].get("log_extra", {})}
            access_log.info("request", extra=extra)
