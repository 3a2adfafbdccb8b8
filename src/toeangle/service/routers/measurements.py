"""Measurements: a photo (JSON answer or the annotated picture) and given landmarks.

Photos are read into memory (never to disk) and measured in the worker pool; given points
are pure arithmetic, measured in the service process.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from ...clinical import load_rules
from ...decode import DecodedImage
from ...pipeline import Measurer
from ...schema import (
    DEFAULT_PROTOCOL,
    Detection,
    ImageInfo,
    Landmarks,
    MeasurementResult,
    MeasureOptions,
    ViewCorrection,
)
from ...settings import Settings
from ..deps import LandmarksBodyDep, PhotoBodyDep, PointsMeasurerDep, PoolDep, SettingsDep, TicketDep
from ..openapi import PICTURE_HEADERS, refs
from ..problems import ServiceProblem, problem_responses
from ..uploads import MultipartError, PartTooLarge, is_multipart, parse_multipart
from ..workers import WorkerAnswer

router = APIRouter(prefix="/v1/measurements", tags=["measurements"])

FORM_FIELDS = {"protocol": "protocol", "side": "side", "other_foot_angle_deg": "other_foot_angle_deg", "pain": "pain"}
"""Form field -> MeasureOptions field: the same names as in JSON."""
DEPRECATED_FORM_FIELDS = {"other_foot_angle": "other_foot_angle_deg"}
"""Old form names, still read for a release (declared deprecated in the OpenAPI document)."""
SMALL_FIELD_BYTES = 1024


class MeasurementResponse(MeasurementResult):
    """The pipeline's MeasurementResult, plus the request id (and the overlay when asked for)."""

    request_id: str = Field(description="Also in the X-Request-ID header and in the service's logs")
    overlay_png_base64: str | None = Field(
        default=None, description="The annotated picture (PNG, no EXIF), only with ?include_overlay=true")


class FromLandmarks(BaseModel):
    """Landmarks the app has (e.g. corrected by the user), in pixels of the original upright photo.

    The answer has an `uncertainty_deg` only when the points carry `sigma_px`: send back each point's
    `sigma_px` from the photo's answer (a point placed by hand has none to send; then it is null).
    """

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


class PhotosGoToWorkers:
    """The service process never reads photos itself; it only measures given points (pure math)."""

    name = "none"

    def detect(self, image: DecodedImage) -> Detection:
        raise RuntimeError("photos are measured in the worker pool, not in the service process")


def points_measurer(settings: Settings) -> Measurer:
    return Measurer(settings, detector=PhotosGoToWorkers())


def _example_response() -> dict[str, Any]:
    """The documented answer: FromLandmarks' example measured with the packaged clinical rules."""
    request = FromLandmarks.model_validate(FromLandmarks.model_config["json_schema_extra"]["examples"][0])
    result = Measurer(Settings(), detector=PhotosGoToWorkers(), rules=load_rules()).measure_landmarks(
        request.landmarks, request.options, request.image)
    return {**result.model_dump(mode="json"), "timings_ms": {},  # timings vary; the document must not
            "request_id": "3f2b8c1e9a7d4e5f8a6b1c2d3e4f5a6b"}


EXAMPLE_RESPONSE = _example_response()

BODY_SCHEMAS = {"FromLandmarks": FromLandmarks.model_json_schema(ref_template="#/components/schemas/{model}")}
"""Components written out because the body is read by a dependency, not by FastAPI; the models they
refer to (Landmarks, Point, ...) are components already, as parts of the answer."""
del BODY_SCHEMAS["FromLandmarks"]["$defs"]

PHOTO_FORM = {
    "type": "object",
    "required": ["photo"],
    "properties": {
        "photo": {"type": "string", "format": "binary",
                  "description": "JPEG, PNG, WebP or HEIC: a side-on view of the inner foot. Judged by its bytes."},
        "protocol": {"$ref": "#/components/schemas/ProtocolChoice", "default": DEFAULT_PROTOCOL,
                     "description": "How the toe was bent when the photo was taken"},
        "side": {"$ref": "#/components/schemas/Side", "description": "Which foot"},
        "other_foot_angle_deg": {"type": "number", "minimum": -90, "maximum": 180,
                                 "description": "The other foot's angle (same protocol), for the side-to-side loss"},
        "other_foot_angle": {"type": "number", "minimum": -90, "maximum": 180, "deprecated": True,
                             "description": "The old name of `other_foot_angle_deg`; read for one more release"},
        "pain": {"type": "boolean", "default": False, "description": "Pain in mid-range passive motion"},
    },
}
PHOTO_ERRORS = problem_responses(401, 408, 413, 415, 422, 503, 504)


def read_photo_form(content_type: str | None, body: bytes, settings: Settings, field: str = "photo",
                    limit: int | None = None, protocol: str = "passive_nwb") -> tuple[bytes, MeasureOptions]:
    """The file in form field ``field`` (at most ``limit`` bytes; the photo limit by default) and the options
    (``protocol`` when the form names none): the photo form, and the clip form of /v1/videos."""
    limit = settings.max_upload_bytes if limit is None else limit
    if not is_multipart(content_type):
        raise ServiceProblem(415, "not-multipart", "Expected multipart/form-data",
                             f"send the {field} as a multipart/form-data field named '{field}'")
    try:
        parts = parse_multipart(content_type, body, lambda name: limit if name == field else SMALL_FIELD_BYTES)
    except PartTooLarge as exc:
        if exc.name == field:
            raise ServiceProblem(413, "upload-too-large", "Upload too large", str(exc)) from None
        raise ServiceProblem(422, "invalid-request", "Invalid request", str(exc),  # a 2 kB "angle" is just wrong
                             errors=[{"loc": ["body", exc.name], "msg": str(exc), "type": "too_long"}]) from None
    except MultipartError as exc:
        raise ServiceProblem(422, "malformed-form", "Malformed form", str(exc)) from None
    del body
    photo = parts.get(field)
    if photo is None or not photo.data:
        raise ServiceProblem(422, f"missing-{field}", f"Missing {field}", f"the form has no (non-empty) '{field}' field",
                             errors=[{"loc": ["body", field], "msg": "Field required", "type": "missing"}])
    raw: dict[str, Any] = {"protocol": protocol}
    errors: list[dict[str, Any]] = []
    for old_name, new_name in DEPRECATED_FORM_FIELDS.items():
        if old_name in parts and new_name in parts:
            raise ServiceProblem(422, "invalid-request", "Invalid request", f"send {new_name} only, not also {old_name}",
                                 errors=[{"loc": ["body", old_name], "msg": f"deprecated name of {new_name}",
                                          "type": "extra_forbidden"}])
    for form_name, option in (DEPRECATED_FORM_FIELDS | FORM_FIELDS).items():
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
        back = {v: k for k, v in FORM_FIELDS.items()} | {v: k for k, v in DEPRECATED_FORM_FIELDS.items()
                                                          if k in parts}
        errors += [{"loc": ["body", *[back.get(str(p), str(p)) for p in e["loc"]]], "msg": e["msg"],
                    "type": e["type"]} for e in (exc.errors() if isinstance(exc, ValidationError) else [])]
        raise ServiceProblem(422, "invalid-request", "Invalid request",
                             "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors), errors=errors) from None
    return bytes(photo.data), options


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


async def _measure_photo(request: Request, body: bytes, settings: Settings, pool, ticket,
                         overlay: bool) -> WorkerAnswer:
    data, options = read_photo_form(request.headers.get("content-type"), body, settings)
    del body
    answer = await pool.measure(ticket, data, options, overlay=overlay)
    del data
    # what the access log may say about a measurement (never the photo or its name)
    request.state.log_extra = {"result": answer.result.status, "detector": answer.result.detector,
                               "worker_pid": answer.worker_pid, "worker_cpu_ms": round(answer.cpu_ms, 1)}
    return answer


def _png(answer: WorkerAnswer) -> Response:
    headers = {"X-Toeangle-Status": answer.result.status}
    if answer.result.measurement is not None:
        headers["X-Toeangle-Angle"] = f"{answer.result.measurement.angle_deg:.1f}"
    if answer.result.verdict is not None:
        headers["X-Toeangle-Verdict"] = answer.result.verdict.label
    return Response(answer.overlay_png, media_type="image/png", headers=headers)


@router.post("", operation_id="measurements-create", response_model=MeasurementResponse,
             summary="Measure a photo",
             description="Send the photo as multipart/form-data. A photo without usable landmarks is a 200 with "
                         "`status: unmeasurable` and the reasons. With `Accept: image/png` (and not JSON) the "
                         "answer is the annotated picture instead, as from /v1/measurements/overlay.",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": PHOTO_FORM, "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp, image/heic"}}}}}},
             responses={200: {"content": {"application/json": {"example": EXAMPLE_RESPONSE},
                                          "image/png": {"schema": {"type": "string", "format": "binary"}}},
                              "headers": refs(*PICTURE_HEADERS)},
                        **PHOTO_ERRORS})
async def measure(request: Request, body: PhotoBodyDep, settings: SettingsDep, pool: PoolDep, ticket: TicketDep,
                  include_overlay: bool = Query(
                      False, description="Add the annotated picture as base64 PNG (`overlay_png_base64`)")):
    started = time.perf_counter()
    accept = request.headers.get("accept", "")
    wants_png = "image/png" in accept and "application/json" not in accept
    answer = await _measure_photo(request, body, settings, pool, ticket, overlay=include_overlay or wants_png)
    if wants_png:
        return _png(answer)
    body = answer.result.model_dump(mode="json")
    body["timings_ms"] = {**body["timings_ms"], "worker_cpu_ms": round(answer.cpu_ms, 2),
                          "total_ms": round((time.perf_counter() - started) * 1e3, 2)}
    body["request_id"] = request.state.request_id
    if include_overlay:
        body["overlay_png_base64"] = base64.b64encode(answer.overlay_png).decode()
    return MeasurementResponse.model_validate(body)


@router.post("/overlay", operation_id="measurements-overlay", response_class=Response,
             summary="The annotated picture of a photo",
             description="The same form as /v1/measurements; answers the photo (reduced to at most "
                         "TOEANGLE_DECODE_MAX_SIDE) with the landmarks, both axes, the angle and the verdict "
                         "colour, as PNG without EXIF. X-Toeangle-Status/-Angle/-Verdict headers summarise.",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": PHOTO_FORM}}}},
             responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                              "description": "The annotated picture (PNG, no EXIF)",
                              "headers": refs(*PICTURE_HEADERS)},
                        **PHOTO_ERRORS})
async def overlay(request: Request, body: PhotoBodyDep, settings: SettingsDep, pool: PoolDep, ticket: TicketDep):
    return _png(await _measure_photo(request, body, settings, pool, ticket, overlay=True))


@router.post("/from-landmarks", operation_id="measurements-from-landmarks", response_model=MeasurementResponse,
             summary="Measure given landmarks",
             description="The same measurement from points alone (e.g. the app's corrected landmarks); no image. "
                         "Points that cannot be measured (missing, coincident) are a 422 problem. Send back the "
                         "photo's `view_correction` and each point's `sigma_px` to get the corrected angle and its "
                         "`uncertainty_deg` (null without sigmas).",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/FromLandmarks"}}}}},
             responses={200: {"content": {"application/json": {"example": EXAMPLE_RESPONSE}}},
                        **problem_responses(401, 408, 413, 422, 503)})
async def from_landmarks(request: Request, raw: LandmarksBodyDep, measurer: PointsMeasurerDep):
    # The body is read by a dependency (after the key and admission), not by FastAPI, and validated
    # strictly: the contract is JSON, where "12" or false is not a number.
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ServiceProblem(422, "invalid-request", "Invalid request", f"expected application/json, not {media_type}")
    try:
        body = FromLandmarks.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    # Pure arithmetic on a few points (microseconds): done here, no worker needed.
    result = measurer.measure_landmarks(body.landmarks, body.options, body.image, body.view_correction)
    return MeasurementResponse.model_validate({**result.model_dump(mode="json"),
                                               "request_id": request.state.request_id})
