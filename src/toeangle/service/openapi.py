"""What the OpenAPI document says beyond the routes: the response headers, declared once as components.

Every answer carries X-Request-ID (RequestContext); 503s carry Retry-After, 401s WWW-Authenticate, and
the annotated picture the X-Toeangle-* summary. A generated client can read them by name.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "The request's id (the client's own when it sent a valid one); also in JSON "
                                    "bodies and in the service's logs",
                     "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"}},
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}},
    "WWW-Authenticate": {"description": "`Bearer`: the API key goes in `Authorization: Bearer <key>`",
                         "schema": {"type": "string"}},
    "X-Toeangle-Status": {"description": "`ok` or `unmeasurable`", "schema": {"type": "string",
                                                                             "enum": ["ok", "unmeasurable"]}},
    "X-Toeangle-Angle": {"description": "The angle in degrees, one decimal (only when measured)",
                         "schema": {"type": "string", "pattern": "^-?[0-9]+\\.[0-9]$"}},
    "X-Toeangle-Verdict": {"description": "`normal`, `restricted` or `borderline` (only when measured)",
                           "schema": {"type": "string", "enum": ["normal", "restricted", "borderline"]}},
}
PICTURE_HEADERS = ("X-Toeangle-Status", "X-Toeangle-Angle", "X-Toeangle-Verdict")
"""Carried by an answer that is the annotated picture."""
BY_STATUS = {"401": ("WWW-Authenticate",), "503": ("Retry-After",)}


def refs(*names: str) -> dict[str, dict[str, str]]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def install(app: FastAPI, schemas: dict[str, dict[str, Any]]) -> None:
    """Let app.openapi() add the headers and ``schemas`` (components FastAPI does not see) to its document.

    Built once, then cached, as FastAPI does.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document["components"]["schemas"].update(schemas)
            document["components"]["headers"] = HEADERS
            for operation in (op for path in document["paths"].values() for op in path.values()):
                for status, response in operation["responses"].items():
                    response["headers"] = {**refs("X-Request-ID", *BY_STATUS.get(status, ())),
                                           **response.get("headers", {})}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi
