"""Clips: POST /v1/videos measures a clip (the heel raise's peak, or the push-off per step).

Clips are read into memory (never to disk) and measured in the worker pool, like photos, under
their own limits: TOEANGLE_VIDEO_MAX_UPLOAD_BYTES for the upload, TOEANGLE_VIDEO_MAX_SECONDS and
the frame and pixel limits for what decoding may cost (both 413), TOEANGLE_VIDEO_TIMEOUT_S for the
answer (504). A clip within them is answered in the request: at 20-30 frames/s on one worker, the
30-second limit at 30 fps is well inside the time limit, so no job queue is needed.
"""

from __future__ import annotations

import base64
import time

from fastapi import APIRouter, Query, Request
from pydantic import Field

from ...schema import VideoResult
from ...video.pipeline import check_clip_options
from ..deps import PoolDep, SettingsDep, TicketDep, VideoBodyDep
from ..problems import problem_responses
from .measurements import PHOTO_FORM, read_photo_form

router = APIRouter(prefix="/v1/videos", tags=["videos"])

VIDEO_FORM = {
    "type": "object",
    "required": ["video"],
    "properties": {
        "video": {"type": "string", "format": "binary",
                  "description": "MP4, MOV, WebM or AVI (H.264, HEVC, VP9, ...): a side-on view of the inner foot. "
                                 "Judged by its bytes; the container's rotation is applied."},
        **{k: v for k, v in PHOTO_FORM["properties"].items() if k not in ("photo", "other_foot_angle")},
        "protocol": {"$ref": "#/components/schemas/Protocol", "default": "heel_raise",
                     "description": "heel_raise: the peak while the heel is off the floor; walking, running: the "
                                    "angle at push-off, per step"},
    },
}


class VideoResponse(VideoResult):
    """The clip pipeline's VideoResult, plus the request id (and the pictures when asked for)."""

    request_id: str = Field(description="Also in the X-Request-ID header and in the service's logs")
    plot_svg: str | None = Field(default=None, description="The curve (SVG), only with ?include_pictures=true")
    key_frame_png_base64: str | None = Field(
        default=None, description="The key frame with the overlay (PNG, no metadata), only with ?include_pictures=true")


@router.post("", operation_id="videos-create", response_model=VideoResponse, summary="Measure a clip",
             description="Send the clip as multipart/form-data (field `video`). Every frame gets a status and, when "
                         "measured, its angle; the smoothed curve gives the movement: for `heel_raise` the peak while "
                         "the heel is off the floor, for `walking`/`running` the angle at push-off of each step (mean "
                         "and spread). A clip whose foot cannot be read is a 200 with `status: unmeasurable` and the "
                         "reasons. Too long, too many frames or pixels, or too many bytes: 413. `protocol=auto` (photos "
                         "only): 422.",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": VIDEO_FORM, "encoding": {"video": {"contentType": "video/mp4, video/quicktime, video/webm"}}}}}},
             responses=problem_responses(401, 408, 413, 415, 422, 503, 504))
async def create(request: Request, body: VideoBodyDep, settings: SettingsDep, pool: PoolDep, ticket: TicketDep,
                 include_pictures: bool = Query(False, description="Add the plot (SVG) and the key frame (PNG, base64)")):
    started = time.perf_counter()
    data, options = read_photo_form(request.headers.get("content-type"), body, settings, field="video",
                                    limit=settings.video_max_upload_bytes, protocol="heel_raise")
    del body
    check_clip_options(options)  # before a worker is taken: 422
    answer = await pool.measure_video(ticket, data, options, pictures=include_pictures)
    del data
    request.state.log_extra = {"result": answer.result.status, "detector": answer.result.detector,
                               "frames": len(answer.result.frames), "worker_pid": answer.worker_pid,
                               "worker_cpu_ms": round(answer.cpu_ms, 1)}
    reply = answer.result.model_dump(mode="json")
    reply["timings_ms"] = {**reply["timings_ms"], "worker_cpu_ms": round(answer.cpu_ms, 2),
                           "total_ms": round((time.perf_counter() - started) * 1e3, 2)}
    reply["request_id"] = request.state.request_id
    if include_pictures:
        reply["plot_svg"] = answer.plot_svg
        reply["key_frame_png_base64"] = base64.b64encode(answer.key_frame_png).decode()
    return VideoResponse.model_validate(reply)
