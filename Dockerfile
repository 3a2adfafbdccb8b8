# The same app as `toeangle serve`: docker build -t toeangle . && docker run -p 8000:8000 toeangle
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TOEANGLE_HOST=0.0.0.0 \
    TOEANGLE_PORT=8000 \
    TOEANGLE_MODELS_DIR=/app/models

# OpenCV (opencv-contrib-python) and MediaPipe load libGL and GLib at import.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf src
# The shipped models, baked in (TOEANGLE_MODELS_DIR points here).
COPY models ./models

RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent toeangle
USER toeangle

EXPOSE 8000
# Liveness; readiness (workers warm) is GET /readyz, for an orchestrator's readiness probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# uvicorn finishes in-flight requests on SIGTERM (docker stop gives 10 s by default; use -t for more).
STOPSIGNAL SIGTERM
CMD ["toeangle", "serve"]
