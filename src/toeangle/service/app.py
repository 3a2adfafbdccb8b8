"""The HTTP service: a thin edge that translates HTTP to the Measurer (in worker processes) and back.

    create_app(settings) -> FastAPI

Photos are read into memory (never to disk), measured in a bounded pool of worker
processes, and answered as the schema's own models; every failure is problem+json
(problems.py). `toeangle serve` and the Docker image both run this app.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from typing import Any, get_args

from fastapi import Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import BaseModel, Field, ValidationError

from .. import __version__
from ..clinical import load_rules
from ..decode import DecodedImage
from ..pipeline import Measurer
from ..routine import routine_for
from ..schema import (Detection, ImageInfo, Landmarks, MeasureOptions, MeasurementResult, Protocol, Routine, Side,
                      ViewCorrection)
from ..settings import Settings, get_settings
from . import problems
from .problems import PROBLEM_JSON, Problem, ServiceProblem
from .uploads import (DRAIN_FACTOR, MULTIPART_OVERHEAD, BodyLimit, MultipartError, PartTooLarge, drain, is_multipart,
                      parse_multipart, problem_bytes, send_problem)
from .workers import Overloaded, WorkerPool

log = logging.getLogger("toeangle.service")
access_log = logging.getLogger("toeangle.access")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
FORM_FIELDS = {"protocol": "protocol", "side": "side", "other_foot_angle": "other_foot_angle_deg", "pain": "pain"}
"""Form field -> MeasureOptions field."""
SMALL_FIELD_BYTES = 1024


# ---- response models: the schema's nouns, plus what only HTTP adds ---------------------

class MeasurementResponse(MeasurementResult):
    """The pipeline's MeasurementResult, plus the request id (and the overlay when asked for)."""

    request_id: str = Field(description="Also in the X-Request-ID header and in the service's logs")
    overlay_png_base64: str | None = Field(
        default=None, description="The annotated picture (PNG, no EXIF), only with ?include_overlay=true")


class FromLandmarks(BaseModel):
    """Landmarks the app has (e.g. corrected by the user), in pixels of the original upright photo."""

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{
        "landmarks": {"heel": {"x": 412, "y": 880}, "first_metatarsal": {"x": 905, "y": 700},
                      "first_mtp": {"x": 1240, "y": 640}, "hallux_ip": {"x": 1420, "y": 520}},
        "options": {"protocol": "passive_nwb", "side": "left"},
        "image": {"width": 1600, "height": 1200},
    }]}}

    landmarks: Landmarks
    options: MeasureOptions = MeasureOptions()
    image: ImageInfo | None = Field(default=None, description="Size of the photo the points belong to, if known")
    view_correction: ViewCorrection | None = Field(
        default=None, description="measurement.view_correction from the photo's first answer: send it back with "
                                  "dragged points so they are corrected for the same perspective")


class ProtocolInfo(BaseModel):
    name: Protocol
    title: str
    how: str
    normal_min_deg: float
    source: str
    graded: bool = Field(description="Whether Coughlin & Shurnas grades apply to this test")


class Health(BaseModel):
    status: str = Field(examples=["alive"])
    version: str = __version__


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    workers: int
    in_flight: int
    capacity: int


# ---- OpenAPI pieces ------------------------------------------------------------------

PHOTO_FORM = {
    "type": "object",
    "required": ["photo"],
    "properties": {
        "photo": {"type": "string", "format": "binary",
                  "description": "JPEG, PNG, WebP or HEIC: a side-on view of the inner foot. Judged by its bytes."},
        "protocol": {"type": "string", "enum": list(get_args(Protocol)), "default": "passive_nwb",
                     "description": "How the toe was bent when the photo was taken"},
        "side": {"type": "string", "enum": list(get_args(Side)), "description": "Which foot"},
        "other_foot_angle": {"type": "number", "minimum": -90, "maximum": 180,
                             "description": "The other foot's angle (same protocol), for the side-to-side loss"},
        "pain": {"type": "boolean", "default": False, "description": "Pain in mid-range passive motion"},
    },
}


def _problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    titles = {401: "Missing or wrong API key", 413: "Upload or image too large",
              415: "Not an image (by its bytes), or the body is not multipart/form-data",
              422: "Corrupt image, missing or invalid fields, or unusable landmarks",
              503: "Busy (queue full; see Retry-After) or not ready", 504: "The time limit passed"}
    return {code: {"description": titles[code], "model": Problem, "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for code in codes}


# ---- the app --------------------------------------------------------------------------

class _PhotosGoToWorkers:
    """The service process never reads photos itself; it only measures given points (pure math)."""

    name = "none"

    def detect(self, image: DecodedImage) -> Detection:
        raise RuntimeError("photos are measured in the worker pool, not in the service process")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    pool = WorkerPool(settings)
    points_measurer = Measurer(settings, detector=_PhotosGoToWorkers())
    rules = points_measurer.rules
    example_request = FromLandmarks.model_validate(FromLandmarks.model_config["json_schema_extra"]["examples"][0])
    example = points_measurer.measure_landmarks(example_request.landmarks, example_request.options,
                                                example_request.image)
    example_response = {**example.model_dump(mode="json"), "timings_ms": {},  # timings vary; the document must not
                        "request_id": "3f2b8c1e9a7d4e5f8a6b1c2d3e4f5a6b"}

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
    )
    app.state.pool = pool
    app.state.settings = settings
    problems.install(app)

    bearer = HTTPBearer(auto_error=False, description="Needed only when TOEANGLE_API_KEYS is set")
    keys = [k.encode() for k in settings.api_keys]

    async def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not keys:
            return
        given = (credentials.credentials if credentials else "").encode()
        if not any(hmac.compare_digest(given, key) for key in keys):
            raise ServiceProblem(401, "unauthorized", "Missing or wrong API key",
                                 "send Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"})

    # Declared (and in the OpenAPI document) only when keys are configured: an open service has no security scheme.
    secured = [Depends(require_key)] if keys else []

    # -- measurements --

    async def read_photo_form(request: Request) -> tuple[bytes, MeasureOptions]:
        content_type = request.headers.get("content-type")
        if not is_multipart(content_type):
            raise ServiceProblem(415, "not-multipart", "Expected multipart/form-data",
                                 "send the photo as a multipart/form-data field named 'photo'")
        body = await request.body()
        try:
            parts = parse_multipart(content_type, body, lambda name: settings.max_upload_bytes if name == "photo"
                                    else SMALL_FIELD_BYTES)
        except PartTooLarge as exc:
            if exc.name == "photo":
                raise ServiceProblem(413, "upload-too-large", "Upload too large", str(exc)) from None
            raise ServiceProblem(422, "invalid-request", "Invalid request", str(exc),  # a 2 kB "angle" is just wrong
                                 errors=[{"loc": ["body", exc.name], "msg": str(exc), "type": "too_long"}]) from None
        except MultipartError as exc:
            raise ServiceProblem(422, "malformed-form", "Malformed form", str(exc)) from None
        del body
        photo = parts.get("photo")
        if photo is None or not photo.data:
            raise ServiceProblem(422, "missing-photo", "Missing photo", "the form has no (non-empty) 'photo' field",
                                 errors=[{"loc": ["body", "photo"], "msg": "Field required", "type": "missing"}])
        raw: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for form_name, option in FORM_FIELDS.items():
            part = parts.get(form_name)
            if part is not None:  # present means validated: an empty side is as wrong as "middle"
                try:
                    raw[option] = _form_value(option, part.data.decode("utf-8", "replace").strip())
                except ValueError as exc:
                    errors.append({"loc": ["body", form_name], "msg": str(exc), "type": "type_error"})
        try:
            if errors:
                raise ValueError
            options = MeasureOptions.model_validate(raw, strict=True)
        except (ValidationError, ValueError) as exc:
            back = {v: k for k, v in FORM_FIELDS.items()}
            errors += [{"loc": ["body", *[back.get(str(p), str(p)) for p in e["loc"]]], "msg": e["msg"],
                        "type": e["type"]} for e in (exc.errors() if isinstance(exc, ValidationError) else [])]
            raise ServiceProblem(422, "invalid-request", "Invalid request",
                                 "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors), errors=errors) from None
        return bytes(photo.data), options

    def _with_service_timings(result: MeasurementResult, started: float, cpu_ms: float) -> dict[str, Any]:
        data = result.model_dump(mode="json")
        data["timings_ms"] = {**data["timings_ms"], "worker_cpu_ms": round(cpu_ms, 2),
                              "total_ms": round((time.perf_counter() - started) * 1e3, 2)}
        return data

    def _png(answer, request: Request) -> Response:
        headers = {"X-Toeangle-Status": answer.result.status}
        if answer.result.measurement is not None:
            headers["X-Toeangle-Angle"] = f"{answer.result.measurement.angle_deg:.1f}"
        if answer.result.verdict is not None:
            headers["X-Toeangle-Verdict"] = answer.result.verdict.label
        return Response(answer.overlay_png, media_type="image/png", headers=headers)

    @app.post("/v1/measurements", tags=["measurements"], operation_id="measurements-create",
              response_model=MeasurementResponse, dependencies=secured,
              summary="Measure a photo",
              description="Send the photo as multipart/form-data. A photo without usable landmarks is a 200 with "
                          "`status: unmeasurable` and the reasons. With `Accept: image/png` (and not JSON) the "
                          "answer is the annotated picture instead, as from /v1/measurements/overlay.",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                  "schema": PHOTO_FORM, "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp, image/heic"}}}}}},
              responses={200: {"content": {"application/json": {"example": example_response},
                                           "image/png": {"schema": {"type": "string", "format": "binary"}}}},
                         **_problem_responses(401, 413, 415, 422, 503, 504)})
    async def measure(request: Request, include_overlay: bool = Query(
            False, description="Add the annotated picture as base64 PNG (`overlay_png_base64`)")):
        started = time.perf_counter()
        data, options = await read_photo_form(request)
        accept = request.headers.get("accept", "")
        wants_png = "image/png" in accept and "application/json" not in accept
        answer = await pool.measure(request.state.ticket, data, options, overlay=include_overlay or wants_png)
        del data
        _note(request, answer)
        if wants_png:
            return _png(answer, request)
        body = _with_service_timings(answer.result, started, answer.cpu_ms)
        body["request_id"] = request.state.request_id
        if include_overlay:
            body["overlay_png_base64"] = base64.b64encode(answer.overlay_png).decode()
        return MeasurementResponse.model_validate(body)

    @app.post("/v1/measurements/overlay", tags=["measurements"], operation_id="measurements-overlay",
              dependencies=secured, response_class=Response, summary="The annotated picture of a photo",
              description="The same form as /v1/measurements; answers the photo (reduced to at most "
                          "TOEANGLE_DECODE_MAX_SIDE) with the landmarks, both axes, the angle and the verdict "
                          "colour, as PNG without EXIF. X-Toeangle-Status/-Angle/-Verdict headers summarise.",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": PHOTO_FORM}}}},
              responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                               "description": "PNG"},
                         **_problem_responses(401, 413, 415, 422, 503, 504)})
    async def overlay(request: Request):
        data, options = await read_photo_form(request)
        answer = await pool.measure(request.state.ticket, data, options, overlay=True)
        del data
        _note(request, answer)
        return _png(answer, request)

    @app.post("/v1/measurements/from-landmarks", tags=["measurements"], operation_id="measurements-from-landmarks",
              response_model=MeasurementResponse, dependencies=secured, summary="Measure given landmarks",
              description="The same measurement from points alone (e.g. the app's corrected landmarks); no image. "
                          "Points that cannot be measured (missing, coincident) are a 422 problem.",
              responses={200: {"content": {"application/json": {"example": example_response}}},
                         **_problem_responses(401, 413, 422)})
    async def from_landmarks(body: FromLandmarks, request: Request):
        # FastAPI validated leniently (it would take "12" or false for a number); the contract is strict JSON.
        body = FromLandmarks.model_validate_json(await request.body(), strict=True)
        # Pure arithmetic on a few points (microseconds): done here, no worker needed.
        result = points_measurer.measure_landmarks(body.landmarks, body.options, body.image, body.view_correction)
        return MeasurementResponse.model_validate({**result.model_dump(mode="json"),
                                                   "request_id": request.state.request_id})

    # -- reference data --

    @app.get("/v1/protocols", tags=["reference"], operation_id="reference-protocols", dependencies=secured,
             response_model=list[ProtocolInfo], summary="The test positions and their normal values",
             responses=_problem_responses(401))
    async def protocols():
        return [ProtocolInfo(**asdict(p)) for p in rules.protocols.values()]

    @app.get("/v1/routines", tags=["reference"], operation_id="reference-routines", dependencies=secured,
             response_model=list[Routine], summary="The exercise routine of each severity",
             responses=_problem_responses(401))
    async def routines():
        return [routine_for(severity, rules) for severity in get_args(Routine.model_fields["severity"].annotation)]

    # -- operations --

    @app.get("/healthz", tags=["operations"], operation_id="operations-health", response_model=Health,
             summary="Alive (the process answers)")
    async def healthz():
        return Health(status="alive")

    @app.get("/readyz", tags=["operations"], operation_id="operations-ready", response_model=Readiness,
             summary="Ready: every worker has built its Measurer and measured once",
             responses=_problem_responses(503))
    async def readyz(request: Request):
        if not pool.ready:
            raise ServiceProblem(503, "not-ready", "Not ready", pool.error or "the workers are still starting",
                                 headers={"Retry-After": "2"})
        return Readiness(status="ready", workers=settings.workers, in_flight=pool.in_flight, capacity=pool.capacity)

    # -- the web page --

    web = resources.files("toeangle") / "web"

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse((web / "index.html").read_text(encoding="utf-8"))

    app.mount("/web", StaticFiles(packages=[("toeangle", "web")]), name="web")

    # -- metrics --

    registry = CollectorRegistry()
    registry.register(_PoolCollector(pool))
    Instrumentator(registry=registry, excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(app).expose(
        app, include_in_schema=False)

    # Order, outermost first: request id + log, CORS (so browsers can read every error), admission
    # (a full queue refuses before the body is read), body limit, the app.
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + MULTIPART_OVERHEAD,
                       problem_body=lambda scope, detail: problem_bytes(
                           413, "upload-too-large", "Upload too large", detail, scope["path"],
                           scope.get("state", {}).get("request_id")))
    app.add_middleware(Admission, pool=pool, drain_cap=(settings.max_upload_bytes + MULTIPART_OVERHEAD) * DRAIN_FACTOR)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After", "X-Toeangle-Status", "X-Toeangle-Angle",
                                           "X-Toeangle-Verdict"], max_age=600)
    app.add_middleware(RequestContext)
    return app


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


def _form_value(option: str, text: str) -> Any:
    """A form field's text as the type its MeasureOptions field has (validated strictly after)."""
    if option == "pain":
        if text.lower() not in ("true", "false"):
            raise ValueError("Input should be true or false")
        return text.lower() == "true"
    if option == "other_foot_angle_deg":
        try:
            return float(text)
        except ValueError:
            raise ValueError("Input should be a number") from None
    return text


async def _start(pool: WorkerPool) -> None:
    try:
        started = time.perf_counter()
        await pool.start()
        log.info("workers ready", extra={"workers": pool.settings.workers,
                                         "startup_s": round(time.perf_counter() - started, 2)})
    except Exception as exc:
        log.error("workers failed to start", extra={"error": f"{type(exc).__name__}: {exc}"})


def _note(request: Request, answer) -> None:
    """What the access log may say about a measurement (never the photo or its name)."""
    request.state.log_extra = {"result": answer.result.status, "detector": answer.result.detector,
                               "worker_pid": answer.worker_pid, "worker_cpu_ms": round(answer.cpu_ms, 1)}


class _PoolCollector:
    def __init__(self, pool: WorkerPool):
        self.pool = pool

    def collect(self):
        pool = self.pool
        yield GaugeMetricFamily("toeangle_in_flight", "Measurements running or queued", value=pool.in_flight)
        yield GaugeMetricFamily("toeangle_capacity", "Workers plus queue size", value=pool.capacity)
        yield GaugeMetricFamily("toeangle_workers_ready", "1 when every worker is warm", value=int(pool.ready))
        yield CounterMetricFamily("toeangle_rejected", "Requests refused with 503 (queue full)", value=pool.rejected)
        yield CounterMetricFamily("toeangle_timeouts", "Requests that ran out of time (504)", value=pool.timed_out)


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
