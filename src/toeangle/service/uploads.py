"""Request bodies held in memory only: draining refused bodies, and a multipart parser.

Starlette's own form parser spools file parts over 1 MB to a temporary file on disk, and a
photo of a body is health data that must never touch the disk; it also reads bodies of any
size. So the body is read by deps.read_body, counting bytes as they arrive (Content-Length
is checked first but not trusted), and multipart is parsed from memory here with
python-multipart's streaming parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

MULTIPART_OVERHEAD = 64 * 1024
"""Room for the form's other fields and part headers on top of the photo's size limit."""

DRAIN_FACTOR = 4
"""An oversized body is read and dropped up to this many times the limit, so that the client
gets the 413 instead of a connection reset; beyond that the connection is closed."""


async def drain(request, cap: int, timeout_s: float) -> bool:
    """Read and drop a request body (up to ``cap`` bytes, for at most ``timeout_s``) before answering
    without it; False when some of it is left unread (the connection should then be closed)."""
    declared = content_length(request.scope)
    if declared is not None and declared > cap:
        return False
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    return False
    except (TimeoutError, ClientDisconnect):
        return False
    return True


def content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


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
