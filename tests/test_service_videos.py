"""POST /v1/videos end to end: a real `toeangle serve` with small clip limits, a rendered heel raise and
every kind of bad clip (each a problem+json 4xx, never a 500)."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from conftest import mp4
from PIL import Image
from service_server import start_server
from test_service_api import assert_no_metadata, assert_problem


@pytest.fixture(scope="module")
def video_server(tmp_path_factory):
    """One worker; clips of at most 2 s and 1 MB."""
    srv = start_server(tmp_path_factory.mktemp("videos"), "videos", workers="1", video_max_seconds="2",
                       video_max_upload_bytes=str(1024 * 1024))
    yield srv
    srv.stop()


def post_clip(url: str, data: bytes, fields: dict | None = None, query: str = "") -> httpx.Response:
    return httpx.post(f"{url}/v1/videos{query}", files={"video": ("clip.mp4", data, "video/mp4")}, data=fields or {},
                      timeout=120)


def test_a_rendered_heel_raise_is_measured_with_plot_and_key_frame(video_server, rendered_heel_raise):
    path, truth = rendered_heel_raise
    response = post_clip(video_server.url, path.read_bytes(), query="?include_pictures=true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["options"]["protocol"] == "heel_raise"  # the clips' default
    assert abs(body["movement"]["angle_deg"] - truth.angles_deg.max()) <= 6.0  # as in test_video.py
    assert len(body["frames"]) == len(truth.frames) and body["frames_followed"] >= len(truth.frames) // 2
    assert body["verdict"]["normal_min_deg"] == 42.0 and body["request_id"]
    assert body["plot_svg"].startswith("<svg")
    key = assert_no_metadata(base64.b64decode(body["key_frame_png_base64"]))
    assert key.size == (truth.frames[0].shape[1], truth.frames[0].shape[0])
    plain = post_clip(video_server.url, path.read_bytes(), fields={"protocol": "walking"}).json()
    assert plain["plot_svg"] is None and plain["options"]["protocol"] == "walking"


def test_a_clip_without_a_foot_is_a_200_unmeasurable(video_server, tmp_path):
    data = mp4([np.full((120, 160, 3), 90, np.uint8)] * 6, 30.0, tmp_path / "wall.mp4")
    body = post_clip(video_server.url, data, query="?include_pictures=true").json()
    assert body["status"] == "unmeasurable" and body["reason_codes"][0] == "too_few_frames"
    assert "unmeasurable" in body["plot_svg"]  # the pictures say so too: the first frame, with its reasons
    assert_no_metadata(base64.b64decode(body["key_frame_png_base64"]))


def test_bad_clips_are_problems_not_500s(video_server, tmp_path):
    url = video_server.url
    good = mp4([np.full((120, 160, 3), 90, np.uint8)] * 6, 30.0, tmp_path / "ok.mp4")
    assert_problem(post_clip(url, b"definitely not a clip"), 415, "unsupported-video")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    assert_problem(post_clip(url, buf.getvalue()), 415, "unsupported-video")  # a photo sent as a clip
    assert_problem(post_clip(url, good[: len(good) // 2]), 422, "corrupt-video")
    long = mp4([np.full((120, 160, 3), 90, np.uint8)] * 75, 30.0, tmp_path / "long.mp4")  # 2.5 s
    assert "limit is 2 s" in assert_problem(post_clip(url, long), 413, "clip-too-long")["detail"]
    assert_problem(post_clip(url, good + bytes(1024 * 1024)), 413, "upload-too-large")
    assert_problem(httpx.post(url + "/v1/videos", files={"photo": ("a.mp4", b"x")}, timeout=30), 422, "missing-video")
    assert_problem(post_clip(url, good, fields={"protocol": "dancing"}), 422, "invalid-request")
    auto = assert_problem(post_clip(url, good, fields={"protocol": "auto"}), 422, "unprocessable")
    assert "clip needs its movement named" in auto["detail"]  # auto reads a photo's posture, not a clip's movement
