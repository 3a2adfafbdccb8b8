"""Every failure as RFC 9457 problem+json, mapped from the core's exception types in one place.

No handler ever returns a stack trace: unexpected exceptions are logged with the request id
and answered with a generic 500 problem (which the tests make sure never happens).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    CorruptImageError,
    CorruptVideoError,
    ImageTooLargeError,
    LandmarkError,
    ToeangleError,
    UnsupportedImageError,
    UnsupportedVideoError,
    VideoTooLargeError,
)
from .uploads import DRAIN_FACTOR, MULTIPART_OVERHEAD, drain
from .workers import NotReady, Overloaded, TimedOut

PROBLEM_JSON = "application/problem+json"
CLIENT_CLOSED_REQUEST = 499
REFUSAL_DRAIN_S = 5.0
"""At most this long is spent reading and dropping the body of a refused request."""
log = logging.getLogger("toeangle.service")


class Problem(BaseModel):
    """RFC 9457 problem details, plus the request id and, for validation failures, the fields at fault."""

    type: str = Field(description="URI naming the kind of problem (listed in docs/service.md)",
                      examples=["urn:toeangle:problem:unsupported-image"])
    title: str = Field(examples=["Not an image"])
    status: int = Field(examples=[415])
    detail: str = Field(examples=["not a JPEG, PNG, WebP or HEIC image (read 13 bytes)"])
    instance: str | None = Field(default=None, description="The request path")
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="Field errors, for 422 validation problems")


class ServiceProblem(Exception):
    """A problem raised by the service's own code (size limits, missing parts, access)."""

    def __init__(self, status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.errors = errors


class Refusal(ServiceProblem):
    """A problem found before the body is read (no key, no place, a declared size over the limit).

    The body is read and dropped first (up to a bound of bytes and seconds): a client still sending
    when the connection closes may get a reset instead of the answer.
    """


class ClientGone(Exception):
    """The client closed the connection before its request was read: nobody to answer."""


# The core's errors -> (status, slug, title). The most specific class wins (checked in order).
CORE_ERRORS: tuple[tuple[type[ToeangleError], int, str, str], ...] = (
    (UnsupportedImageError, 415, "unsupported-image", "Not an image in an accepted format"),
    (ImageTooLargeError, 413, "too-many-pixels", "Image has too many pixels"),
    (CorruptImageError, 422, "corrupt-image", "Corrupt or truncated image"),
    (UnsupportedVideoError, 415, "unsupported-video", "Not a clip in an accepted container"),
    (VideoTooLargeError, 413, "clip-too-long", "Clip too long or too large to decode"),
    (CorruptVideoError, 422, "corrupt-video", "Corrupt or truncated clip"),
    (LandmarkError, 422, "unusable-landmarks", "Landmarks cannot be measured"),
    (ToeangleError, 422, "unprocessable", "Input cannot be processed"),
)


def problem_response(request: Request, status: int, slug: str, title: str, detail: str,
                     headers: dict[str, str] | None = None, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = Problem(type=f"urn:toeangle:problem:{slug}", title=title, status=status, detail=detail,
                   instance=request.url.path, request_id=getattr(request.state, "request_id", None), errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers,
                        media_type=PROBLEM_JSON)


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of a route's problems."""
    titles = {401: "Missing or wrong API key", 408: "The request body did not arrive in time", 413: "Upload or image too large",
              415: "Not an image (by its bytes), or the body is not multipart/form-data",
              422: "Corrupt image, missing or invalid fields, or unusable landmarks",
              503: "Busy (queue full; see Retry-After) or not ready", 504: "The time limit passed"}
    return {code: {"description": titles[code], "model": Problem,
                   "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for code in codes}


def _clean_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field errors without the input values (which could be large, or a photo)."""
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors]


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceProblem)
    async def _service(request: Request, exc: ServiceProblem):
        return problem_response(request, exc.status, exc.slug, exc.title, exc.detail, exc.headers, exc.errors)

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal):
        settings = request.app.state.settings
        cap = (settings.max_upload_bytes + MULTIPART_OVERHEAD) * DRAIN_FACTOR
        headers = exc.headers
        if not await drain(request, cap, min(settings.body_timeout_s, REFUSAL_DRAIN_S)):
            headers = {**headers, "Connection": "close"}
        return problem_response(request, exc.status, exc.slug, exc.title, exc.detail, headers, exc.errors)

    @app.exception_handler(ClientGone)
    async def _client_gone(request: Request, exc: ClientGone):
        # Not an error of the service, so not a 5xx: 499 (nginx's "client closed request"), which
        # nobody receives but the access log and the metrics count.
        log.info("client disconnected", extra={"request_id": getattr(request.state, "request_id", None),
                                               "detail": str(exc)})
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(ToeangleError)
    async def _core(request: Request, exc: ToeangleError):
        for kind, status, slug, title in CORE_ERRORS:
            if isinstance(exc, kind):
                return problem_response(request, status, slug, title, str(exc))
        raise AssertionError("unreachable: ToeangleError is in CORE_ERRORS")

    async def _validation(request: Request, exc: RequestValidationError | ValidationError):
        errors = _clean_errors(list(exc.errors()))
        return problem_response(request, 422, "invalid-request", "Invalid request",
                                "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors), errors=errors)

    # FastAPI's (the request did not fit the route) and pydantic's (a strict re-validation) alike
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ValidationError, _validation)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded):
        return problem_response(request, 503, "overloaded", "Service busy", str(exc),
                                headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(NotReady)
    async def _not_ready(request: Request, exc: NotReady):
        return problem_response(request, 503, "not-ready", "Service not ready", str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(TimedOut)
    async def _timed_out(request: Request, exc: TimedOut):
        return problem_response(request, 504, "timeout", "Measurement took too long", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. not UTF-8): bad input like any other
            return problem_response(request, 422, "invalid-request", "Invalid request", f"malformed body: {exc.detail}")
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, f"http-{exc.status_code}")
        return problem_response(request, exc.status_code, slug, str(exc.detail), str(exc.detail),
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error", extra={"request_id": getattr(request.state, "request_id", None)})
        return problem_response(request, 500, "internal", "Internal error",
                                "An unexpected error occurred; it has been logged with the request id.")
