"""The web page: index.html at / and its files under /web."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
WEB = resources.files("toeangle") / "web"


@router.get("/")
async def index():
    return HTMLResponse((WEB / "index.html").read_text(encoding="utf-8"))


def static_files() -> StaticFiles:
    """Mounted at /web by create_app (a router cannot carry a mount)."""
    return StaticFiles(packages=[("toeangle", "web")])
