"""The HTTP service (FastAPI): API under /v1, the web page at /, health, readiness and metrics."""

from .app import create_app

__all__ = ["create_app"]
