"""Request bodies held in memory only: a size-limiting ASGI middleware and a multipart parser.

Starlette's own form parser spools file parts over 1 MB to a temporary file on disk, and a
photo of a body is health data that must never touch the disk; it also reads bodies of any
size. So the body is read here, counting bytes as they arrive (Content-Length is checked
first but not trusted), and multipart is parsed from memory with python-multipart's
streaming parser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

MULTIPART_OVERHEAD = 64 * 1024
"""Room for the form's other fields and part headers on top of the photo's size limit."""

DRAIN_FACTOR = 4
"""An oversized body is read and dropped up to this many times the limit, so that the client
gets the 413 instead of a connection reset; beyond that the connection is closed."""


class BodyLimit:
    """Pure ASGI middleware: reads each request body into memory, refusing it past ``limit`` bytes with a 413."""

    def __init__(self, app, limit: int, problem_body):
        self.app = app
        self.limit = limit
        self.problem_body = problem_body  # (scope, detail) -> bytes of a problem+json document

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = _content_length(scope)
        if declared is not None and declared > self.limit * DRAIN_FACTOR:
            return await self._refuse(scope, send, f"the request body is {declared:,} bytes; the limit is {self.limit:,}")
        chunks, size, disconnected = [], 0, False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                break
            body = message.get("body", b"")
            size += len(body)
            if size <= self.limit:
                chunks.append(body)
            else:
                chunks = []  # keep nothing of an oversized photo
                if size > self.limit * DRAIN_FACTOR:
                    break
            if not message.get("more_body", False):
                break
        if size > self.limit:
            if disconnected:
                return
            return await self._refuse(scope, send, f"the request body is over the limit of {self.limit:,} bytes")
        whole = b"".join(chunks)
        del chunks
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed and not disconnected:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive() if not disconnected else {"type": "http.disconnect"}

        await self.app(scope, replay, send)

    async def _refuse(self, scope, send, detail: str) -> None:
        body = self.problem_body(scope, detail)
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            headers.append((b"x-request-id", request_id.encode()))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def drain(scope, receive, cap: int) -> bool:
    """Read and drop a request body (up to ``cap`` bytes) before answering without it; False if the client left."""
    declared = _content_length(scope)
    if declared is not None and declared > cap:
        return True
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        size += len(message.get("body", b""))
        if not message.get("more_body", False) or size > cap:
            return True


async def send_problem(scope, send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def problem_bytes(status: int, slug: str, title: str, detail: str, instance: str, request_id: str | None) -> bytes:
    body = {"type": f"urn:toeangle:problem:{slug}", "title": title, "status": status, "detail": detail,
            "instance": instance}
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body).encode()


@dataclass
class Part:
    name: str
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


class PartTooLarge(MultipartError):
    """One form part is over its size limit."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


def is_multipart(content_type: str | None) -> bool:
    return parse_options_header(content_type or "")[0] == b"multipart/form-data"


def parse_multipart(content_type: str, body: bytes, part_limit: Callable[[str], int],
                    max_parts: int = 16) -> dict[str, Part]:
    """The form's parts by name, parsed from memory. A name sent twice is malformed: which one
    the client meant is a guess, and a number or a flag is not a list.

    ``part_limit(name)`` is the most bytes a part of that name may have.
    """
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise MultipartError("multipart/form-data without a boundary")
    parts: dict[str, Part] = {}
    state: dict = {"current": None, "field": b"", "value": b"", "headers": {}, "count": 0}

    def on_part_begin():
        state["count"] += 1
        if state["count"] > max_parts:
            raise MultipartError(f"more than {max_parts} form parts")
        state["headers"] = {}
        state["current"] = None

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished():
        disposition, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise MultipartError("a form part without Content-Disposition: form-data; name=...")
        filename = options.get(b"filename")
        ctype = state["headers"].get(b"content-type")
        state["current"] = Part(name=name.decode("utf-8", "replace"),
                                filename=None if filename is None else filename.decode("utf-8", "replace"),
                                content_type=None if ctype is None else ctype.decode("latin-1"))

    def on_part_data(data, start, end):
        part = state["current"]
        part.data += data[start:end]
        limit = part_limit(part.name)
        if len(part.data) > limit:
            raise PartTooLarge(f"form part '{part.name}' is over the limit of {limit:,} bytes", part.name)

    def on_part_end():
        part = state["current"]
        if part is not None:
            if part.name in parts:
                raise MultipartError(f"the form field '{part.name}' was sent more than once")
            parts[part.name] = part

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise MultipartError(f"malformed multipart body: {exc}") from None
    return parts
