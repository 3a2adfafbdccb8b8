# The same app as `toeangle serve`: docker build -t toeangle . && docker run -p 8000:8000 toeangle
# Any Debian-based image with Python 3.11 as `python3.11` works as BASE; docs/service.md shows how
# the image was built and measured with podman and a base made by mmdebstrap.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib \
    TOEANGLE_HOST=0.0.0.0 \
    TOEANGLE_PORT=8000 \
    TOEANGLE_MODELS_DIR=/app/models

WORKDIR /app
# Dependencies first, from the locks alone (pinned, with hashes, no resolving): this layer is
# rebuilt when a lock changes, not when the code does. No system packages: OpenCV is the headless
# build and mediapipe comes without jax (requirements/overrides.txt).
COPY requirements/build.lock requirements/runtime.lock requirements/
RUN python3.11 -m venv /opt/venv \
    && pip install --require-hashes --no-deps -r requirements/build.lock -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps --no-build-isolation . && rm -rf src build
# The shipped models, baked in (TOEANGLE_MODELS_DIR points here).
COPY models ./models

RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent toeangle
USER toeangle

EXPOSE 8000
# Liveness on the configured port (TOEANGLE_PORT); readiness (workers warm) is GET /readyz, for an
# orchestrator's readiness probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3.11", "-c", "import os, sys, urllib.request; port = os.environ.get('TOEANGLE_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
# uvicorn finishes in-flight requests on SIGTERM (docker stop gives 10 s by default; use -t for more).
STOPSIGNAL SIGTERM
CMD ["toeangle", "serve"]
