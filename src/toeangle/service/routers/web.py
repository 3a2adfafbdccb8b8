"""The web page (index.html at /, its files under /web) and the API's Swagger UI at /docs, served from the package."""

from __future__ import annotations

from importlib import resources

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
WEB = resources.files("toeangle") / "web"


@router.get("/")
async def index():
    return HTMLResponse((WEB / "index.html").read_text(encoding="utf-8"))


@router.get("/docs")
async def docs():
    return HTMLResponse((WEB / "docs.html").read_text(encoding="utf-8"))


def mount_files(app: FastAPI) -> None:
    """The page's files at /web and Swagger UI's at /docs/assets (a router cannot carry a mount)."""
    app.mount("/web", StaticFiles(packages=[("toeangle", "web")]), name="web")
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), name="swagger-ui")
