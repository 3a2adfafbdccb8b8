"""The HTTP service end to end: a real `toeangle serve` on loopback, every endpoint and every error."""

from __future__ import annotations

import base64
import io
import json
import signal
import struct
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from service_server import start_server

from toeangle.clinical import load_rules
from toeangle.pipeline import Measurer
from toeangle.schema import REASON_CODES, Landmarks, MeasureOptions, ViewCorrection

PROBLEM = "application/problem+json"
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def post_photo(url: str, data: bytes, path: str = "/v1/measurements", filename: str = "photo.jpg",
               content_type: str = "image/jpeg", fields: dict | None = None, **kw) -> httpx.Response:
    return httpx.post(url + path, files={"photo": (filename, data, content_type)}, data=fields or {}, timeout=60, **kw)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"] == f"urn:toeangle:problem:{slug}", body
    assert body["title"] and body["detail"] and body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: signature, IHDR and a tiny IDAT (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def gps_jpeg(rgb: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def assert_no_metadata(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG")
    for marker in (b"eXIf", b"Exif", b"tEXt", b"iTXt", b"zTXt", b"PhoneMaker"):
        assert marker not in png
    image = Image.open(io.BytesIO(png))
    assert not image.getexif() and not image.info.get("exif")
    return image


@pytest.fixture(scope="session")
def big_png(real_photos) -> bytes:
    """A 2880x3200 PNG (2.6 MB): PNGs are decoded in full, so it keeps a worker busy for a while."""
    rgb = np.asarray(Image.open(real_photos[0]).convert("RGB"))
    return png_bytes(np.tile(rgb, (5, 6, 1)))


# ---- measuring -------------------------------------------------------------------------

def test_measures_a_marker_photo(server, marker_photo):
    data, truth = marker_photo
    response = post_photo(server.url, data, fields={"protocol": "passive_nwb", "side": "left",
                                                    "other_foot_angle_deg": "70"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["reasons"] == []
    assert abs(body["measurement"]["angle_deg"] - 38.0) < 1.5
    assert body["measurement"]["phalanx_point"] == "hallux_ip"
    assert body["verdict"]["label"] == "restricted" and body["verdict"]["grade"]["grade"] >= 1
    assert body["verdict"]["side_to_side_loss_pct"] == pytest.approx(100 * (70 - body["measurement"]["angle_deg"]) / 70, abs=0.2)
    assert body["routine"]["exercises"] and body["routine"]["disclaimer"]
    assert body["options"] == {"protocol": "passive_nwb", "side": "left", "other_foot_angle_deg": 70.0, "pain": False}
    assert body["detector"].startswith("markers")
    image = Image.open(io.BytesIO(data))
    assert body["image"] == {"width": image.width, "height": image.height, "format": "JPEG"}
    for name, (x, y) in truth.items():  # original-pixel coordinates, within a pixel of the drawn stickers
        point = body["landmarks"][name]
        assert abs(point["x"] - x) < 1.5 and abs(point["y"] - y) < 1.5
        assert point["x"] == round(point["x"], 2) and point["y"] == round(point["y"], 2)  # 0.01 px
        assert 0 <= point["confidence"] <= 1
    assert {"decode_ms", "detect_ms", "worker_cpu_ms", "total_ms"} <= set(body["timings_ms"])
    assert len(body["request_id"]) == 32 and body["request_id"] == response.headers["x-request-id"]
    assert body["overlay_png_base64"] is None


def test_the_old_form_name_of_the_other_foot_still_works(server, marker_photo):
    """`other_foot_angle` was the form's name for the JSON's `other_foot_angle_deg`: read for one more release."""
    data, _ = marker_photo
    old = post_photo(server.url, data, fields={"other_foot_angle": "70"})
    assert old.status_code == 200 and old.json()["options"]["other_foot_angle_deg"] == 70.0
    both = post_photo(server.url, data, fields={"other_foot_angle": "70", "other_foot_angle_deg": "60"})
    assert assert_problem(both, 422, "invalid-request")["errors"][0]["loc"] == ["body", "other_foot_angle"]


def test_refusals_carry_stable_codes(server):
    photo = SAMPLES / "refused" / "outer_side_left_closeup.jpg"
    body = post_photo(server.url, photo.read_bytes()).json()
    assert body["status"] == "unmeasurable"
    assert body["reason_codes"] == ["outer_side"] and "outer side" in body["reasons"][0]
    measured = post_photo(server.url, (SAMPLES / "normal_left_closeup.jpg").read_bytes()).json()
    assert measured["status"] == "ok" and measured["reasons"] == measured["reason_codes"] == []


def test_every_reason_code_is_documented():
    documented = (REPO / "docs" / "service.md").read_text()
    for code in REASON_CODES:
        assert f"`{code}`" in documented, code


def test_same_answer_as_the_core(server, marker_photo):
    data, _ = marker_photo
    body = post_photo(server.url, data, fields={"protocol": "active_nwb"}).json()
    local = Measurer().measure_photo(data, MeasureOptions(protocol="active_nwb")).result
    assert body["measurement"]["angle_deg"] == pytest.approx(local.measurement.angle_deg, abs=1e-9)
    assert body["verdict"] == local.verdict.model_dump(mode="json")


def test_overlay_endpoint_and_variants_carry_no_exif(server, real_photos, marker_photo):
    rgb = np.asarray(Image.open(real_photos[1]).convert("RGB"))
    data, _ = marker_photo
    with_gps = gps_jpeg(np.asarray(Image.open(io.BytesIO(data))))
    assert Image.open(io.BytesIO(with_gps)).getexif().get(0x8825) is not None

    response = post_photo(server.url, with_gps, path="/v1/measurements/overlay")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-toeangle-status"] == "ok" and response.headers["x-toeangle-verdict"] == "restricted"
    assert abs(float(response.headers["x-toeangle-angle"]) - 38) < 1.5
    overlay = assert_no_metadata(response.content)
    assert overlay.size == (rgb.shape[1], rgb.shape[0])
    drawn = np.asarray(overlay.convert("RGB")).astype(int)
    assert np.abs(drawn - np.asarray(Image.open(io.BytesIO(with_gps)).convert("RGB")).astype(int)).max() > 100

    accepted = post_photo(server.url, with_gps, headers={"accept": "image/png"})
    assert accepted.headers["content-type"] == "image/png"
    assert_no_metadata(accepted.content)

    body = post_photo(server.url, with_gps, params={"include_overlay": "true"}).json()
    assert body["status"] == "ok"
    assert_no_metadata(base64.b64decode(body["overlay_png_base64"]))
    assert "PhoneMaker" not in json.dumps(body)


def test_real_photos_never_error(server, real_photos):
    """Markerless photos: a 200 either way (measured by a model, or unmeasurable with reasons)."""
    for path in real_photos:
        response = post_photo(server.url, path.read_bytes(), filename=path.name, content_type="image/png")
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert body["status"] in ("ok", "unmeasurable")
        assert body["status"] == "ok" or body["reasons"]
        assert body["image"]["width"] > 0
        overlay = post_photo(server.url, path.read_bytes(), path="/v1/measurements/overlay", content_type="image/png")
        assert overlay.status_code == 200
        assert_no_metadata(overlay.content)


def test_from_landmarks_matches_the_core(server):
    points = {"heel": [412, 880], "first_metatarsal": [905, 700], "first_mtp": [1240, 640], "hallux_ip": [1420, 520]}
    body = {"landmarks": {k: {"x": x, "y": y} for k, (x, y) in points.items()},
            "options": {"protocol": "weight_bearing", "side": "right"}, "image": {"width": 1600, "height": 1200}}
    response = httpx.post(server.url + "/v1/measurements/from-landmarks", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    local = Measurer().measure_landmarks(Landmarks.model_validate(points), MeasureOptions(protocol="weight_bearing",
                                                                                          side="right"))
    assert got["measurement"]["angle_deg"] == pytest.approx(local.measurement.angle_deg)
    assert got["verdict"]["protocol"] == "weight_bearing" and got["detector"] == "manual"
    assert got["image"] == {"width": 1600, "height": 1200, "format": None}
    assert got["request_id"] == response.headers["x-request-id"]
    assert got["measurement"]["uncertainty_deg"] is None  # no sigmas sent: documented as null


RELAXED_STANDING = {"heel": [400, 880], "first_metatarsal": [800, 760], "first_mtp": [1150, 900],
                    "hallux_ip": [1280, 910], "hallux_tip": [1380, 915]}
"""A foot placed flat, the big toe lying on the floor (tests/test_posture.py's placements)."""


def test_from_landmarks_reads_the_posture_from_the_points_and_takes_auto(server):
    body = {"landmarks": {k: {"x": x, "y": y} for k, (x, y) in RELAXED_STANDING.items()}}
    got = httpx.post(server.url + "/v1/measurements/from-landmarks", json=body).json()
    assert got["verdict"]["label"] == "test-mismatch" and got["verdict"]["protocol"] == "passive_nwb"
    assert got["verdict"]["suggested_protocol"] == "weight_bearing" and got["verdict"]["suggested_normal_min_deg"] == 25
    assert got["measurement"]["angle_deg"] > 0 and got["routine"] is None
    assert got["posture"]["fit"] == "mismatch" and "relaxed standing foot" in got["verdict"]["summary"]
    lifted = {**body["landmarks"], "hallux_ip": {"x": 1260, "y": 820}, "hallux_tip": {"x": 1330, "y": 760}}
    auto = httpx.post(server.url + "/v1/measurements/from-landmarks",
                      json={"landmarks": lifted, "options": {"protocol": "auto"}}).json()
    assert auto["verdict"]["protocol"] == "weight_bearing" and auto["verdict"]["label"] in ("normal", "restricted")
    assert auto["options"]["protocol"] == "auto" and auto["posture"]["fit"] == "match"
    assert "picked from the photo" in auto["verdict"]["summary"]
    no_heel = {k: v for k, v in body["landmarks"].items() if k != "heel"}
    plain = httpx.post(server.url + "/v1/measurements/from-landmarks",
                       json={"landmarks": no_heel, "options": {"protocol": "auto"}}).json()
    assert plain["posture"] is None and plain["verdict"]["protocol"] == "passive_nwb"  # no heel: no posture
    assert "gives no posture" in plain["verdict"]["summary"]


def test_from_landmarks_takes_no_posture_from_the_client(server):
    body = {"landmarks": {k: {"x": x, "y": y} for k, (x, y) in RELAXED_STANDING.items()},
            "posture": {"standing": 0.0, "heel_raised": 0.0, "toe": {"raised": 1.0, "resting": 0.0}}}
    assert_problem(httpx.post(server.url + "/v1/measurements/from-landmarks", json=body), 422, "invalid-request")


def test_the_photo_form_takes_protocol_auto(server, marker_photo):
    """Skin markers' points show the posture as the model's do; auto judges by the test it picks."""
    got = post_photo(server.url, marker_photo[0], fields={"protocol": "auto"}).json()
    assert got["status"] == "ok" and got["options"]["protocol"] == "auto" and got["posture"] is not None
    assert got["verdict"]["protocol"] == got["posture"]["protocol"] and "picked from the photo" in got["verdict"]["summary"]


def test_from_landmarks_has_an_uncertainty_when_the_sigmas_come_back(server):
    points = {"heel": [412, 880], "first_metatarsal": [905, 700], "first_mtp": [1240, 640], "hallux_ip": [1420, 520]}
    sigmas = {"heel": None, "first_metatarsal": 2.0, "first_mtp": 1.5, "hallux_ip": 1.8}
    body = {"landmarks": {k: {"x": x, "y": y, "sigma_px": sigmas[k]} for k, (x, y) in points.items()},
            "view_correction": {"degrees": -3.0, "sigma_deg": 0.6, "moved_points_deg": -3.2, "moved_points_sigma_deg": 0.5}}
    got = httpx.post(server.url + "/v1/measurements/from-landmarks", json=body).json()
    local = Measurer().measure_landmarks(Landmarks.model_validate(body["landmarks"]),
                                         view_correction=ViewCorrection.model_validate(body["view_correction"]))
    assert got["measurement"]["uncertainty_deg"] == local.measurement.uncertainty_deg > 0
    wider = {**body, "landmarks": {k: {**p, "sigma_px": p["sigma_px"] and 3 * p["sigma_px"]}
                                   for k, p in body["landmarks"].items()}}
    assert httpx.post(server.url + "/v1/measurements/from-landmarks",
                      json=wider).json()["measurement"]["uncertainty_deg"] > got["measurement"]["uncertainty_deg"]


def test_dragged_points_keep_the_photos_view_correction(server):
    """The app sends back the correction of the photo's first answer with the points the user moved;
    where it has a part for moved points (the perspective alone), that part applies."""
    points = {"heel": [412, 880], "first_metatarsal": [905, 700], "first_mtp": [1240, 640], "hallux_ip": [1420, 520]}
    url = server.url + "/v1/measurements/from-landmarks"
    plain = httpx.post(url, json={"landmarks": points}).json()
    corrected = httpx.post(url, json={"landmarks": points, "view_correction": {"degrees": -6.5, "sigma_deg": 2.0}}).json()
    assert plain["measurement"]["view_correction"] is None
    assert corrected["measurement"]["angle_2d_deg"] == plain["measurement"]["angle_deg"]
    assert corrected["measurement"]["angle_deg"] == pytest.approx(plain["measurement"]["angle_deg"] - 6.5, abs=0.01)
    assert corrected["measurement"]["view_correction"]["degrees"] == -6.5
    assert corrected["measurement"]["view_correction"]["sigma_deg"] == 2.0
    photos = {"degrees": -6.5, "sigma_deg": 2.0, "moved_points_deg": -4.0, "moved_points_sigma_deg": 1.5}
    moved = httpx.post(url, json={"landmarks": points, "view_correction": photos}).json()
    assert moved["measurement"]["angle_deg"] == pytest.approx(plain["measurement"]["angle_deg"] - 4.0, abs=0.01)
    assert moved["measurement"]["view_correction"]["degrees"] == -4.0
    assert moved["measurement"]["view_correction"]["sigma_deg"] == 1.5
    out_of_range = httpx.post(server.url + "/v1/measurements/from-landmarks", json={
        "landmarks": points, "view_correction": {"degrees": 90, "sigma_deg": 2.0}})
    assert_problem(out_of_range, 422, "invalid-request")


def test_reference_data(server):
    rules = load_rules()
    protocols = httpx.get(server.url + "/v1/protocols").json()
    assert {p["name"]: p["normal_min_deg"] for p in protocols} == {
        n: p.normal_min_deg for n, p in rules.protocols.items()}
    routines = httpx.get(server.url + "/v1/routines").json()
    assert [r["severity"] for r in routines] == ["normal", "mild", "moderate", "severe"]
    assert all(r["exercises"] for r in routines)
    assert [r["see_clinician"] for r in routines] == [False, False, True, True]


def test_health_ready_metrics(server, marker_photo):
    assert httpx.get(server.url + "/healthz").json()["status"] == "alive"
    ready = httpx.get(server.url + "/readyz").json()
    assert ready == {"status": "ready", "workers": 2, "in_flight": 0, "capacity": 10}
    post_photo(server.url, marker_photo[0])
    metrics = httpx.get(server.url + "/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert "toeangle_in_flight 0.0" in text and "toeangle_workers_ready 2.0" in text
    assert 'handler="/v1/measurements"' in text and "http_request_duration_seconds" in text


def test_openapi_is_versioned_and_has_examples(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/measurements", "/v1/measurements/overlay", "/v1/measurements/from-landmarks", "/v1/protocols",
            "/v1/routines", "/healthz", "/readyz"} <= set(spec["paths"])
    create = spec["paths"]["/v1/measurements"]["post"]
    assert create["operationId"] == "measurements-create"
    assert "photo" in create["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]
    example = create["responses"]["200"]["content"]["application/json"]["example"]
    assert example["status"] == "ok" and example["measurement"]["angle_deg"]
    assert {"413", "415", "422", "503"} <= set(create["responses"])


def test_openapi_shares_one_component_per_concept_and_declares_headers(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["Protocol"]["enum"] == ["passive_nwb", "active_nwb", "weight_bearing", "heel_raise", "walking",
                                           "running"]
    assert schemas["Side"]["enum"] == ["left", "right"] and set(schemas["ReasonCode"]["enum"]) == set(REASON_CODES)
    text = json.dumps(spec)
    assert '"enum": ["passive_nwb"' not in text.replace(json.dumps(schemas["Protocol"]), "")  # no second copy
    form = spec["paths"]["/v1/measurements"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["protocol"]["$ref"] == "#/components/schemas/ProtocolChoice"  # a test, or auto
    assert schemas["ProtocolChoice"]["anyOf"] == [{"$ref": "#/components/schemas/Protocol"},
                                                  {"type": "string", "const": "auto"}]
    assert form["properties"]["side"]["$ref"] == "#/components/schemas/Side"
    assert form["properties"]["other_foot_angle"]["deprecated"] is True and "other_foot_angle_deg" in form["properties"]
    assert schemas["ProtocolInfo"]["properties"]["name"]["$ref"] == "#/components/schemas/Protocol"
    assert schemas["MeasureOptions"]["properties"]["protocol"]["$ref"] == "#/components/schemas/ProtocolChoice"
    assert schemas["Verdict"]["properties"]["protocol"]["$ref"] == "#/components/schemas/Protocol"
    body = spec["paths"]["/v1/measurements/from-landmarks"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/FromLandmarks"
    assert set(spec["components"]["headers"]) >= {"X-Request-ID", "Retry-After", "X-Toeangle-Angle"}
    for path in spec["paths"].values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                assert "X-Request-ID" in response["headers"], (operation["operationId"], status)
                if status == "503":
                    assert "Retry-After" in response["headers"]
    picture = spec["paths"]["/v1/measurements/overlay"]["post"]["responses"]["200"]
    assert set(picture["content"]) == {"image/png"} and "X-Toeangle-Verdict" in picture["headers"]


def test_web_page_is_served(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'capture="environment"' in page.text
    assert httpx.get(server.url + "/web/app.js").status_code == 200
    for response in (page, httpx.get(server.url + "/v1/protocols"), httpx.get(server.url + "/docs")):
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_swagger_ui_comes_from_the_package(server):
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "http" not in docs.text.replace('name="viewport"', "")  # no CDN
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text
    bundle = httpx.get(server.url + "/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert httpx.get(server.url + "/redoc").status_code == 404  # ReDoc would load from a CDN


# ---- bad input: problem+json, never a 500 ---------------------------------------------

def test_not_an_image_is_415_whatever_the_declared_type(server):
    for data, ctype in ((b"%PDF-1.7 not a photo" * 50, "image/jpeg"), (b"GIF89a" + b"\0" * 100, "image/png"),
                        (b"hello", "application/octet-stream")):
        assert_problem(post_photo(server.url, data, content_type=ctype), 415, "unsupported-image")


def test_corrupt_and_truncated_images_are_422(server, marker_photo):
    data, _ = marker_photo
    assert_problem(post_photo(server.url, data[: len(data) // 2]), 422, "corrupt-image")
    noise = png_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert_problem(post_photo(server.url, noise[:2000], content_type="image/png"), 422, "corrupt-image")
    assert_problem(post_photo(server.url, noise[:2000] + bytes(2000), content_type="image/png"), 422, "corrupt-image")


def test_decompression_bomb_is_refused_from_the_header(server):
    body = assert_problem(post_photo(server.url, png_header_only(30_000, 30_000), content_type="image/png"),
                          413, "too-many-pixels")
    assert "pixels" in body["detail"]


def test_upload_over_the_limit_is_413(server):
    data = b"\xff\xd8\xff" + bytes(2 * 1024 * 1024 + 100_000)
    assert_problem(post_photo(server.url, data), 413, "upload-too-large")


def test_upload_limit_does_not_trust_content_length(server):
    """A chunked body (no Content-Length) is counted as it arrives."""
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"x.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()

    def body():
        yield head
        for _ in range(40):
            yield bytes(100_000)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(server.url + "/v1/measurements", content=body(),
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"}, timeout=60)
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "upload-too-large")


def test_missing_and_invalid_fields_are_422(server, marker_photo):
    data, _ = marker_photo
    no_photo = httpx.post(server.url + "/v1/measurements", files={"other": ("a.txt", b"x")}, data={"protocol": "active_nwb"})
    assert_problem(no_photo, 422, "missing-photo")
    empty = post_photo(server.url, b"")
    assert_problem(empty, 422, "missing-photo")
    bad = assert_problem(post_photo(server.url, data, fields={"protocol": "tiptoe"}), 422, "invalid-request")
    assert bad["errors"][0]["loc"] == ["body", "protocol"]
    bad = assert_problem(post_photo(server.url, data, fields={"other_foot_angle_deg": "lots"}), 422, "invalid-request")
    assert bad["errors"][0]["loc"] == ["body", "other_foot_angle_deg"]
    bad = assert_problem(post_photo(server.url, data, fields={"other_foot_angle": "lots"}), 422, "invalid-request")
    assert bad["errors"][0]["loc"] == ["body", "other_foot_angle"]  # the deprecated name, as sent
    assert_problem(post_photo(server.url, data, fields={"side": "middle"}), 422, "invalid-request")
    assert_problem(post_photo(server.url, data, fields={"side": ""}), 422, "invalid-request")
    assert_problem(post_photo(server.url, data, fields={"other_foot_angle_deg": "1" * 5000}), 422, "invalid-request")
    assert_problem(post_photo(server.url, data, fields={"pain": "0"}), 422, "invalid-request")
    assert post_photo(server.url, data, fields={"pain": "true"}).json()["options"]["pain"] is True
    twice = post_photo(server.url, data, fields={"other_foot_angle": ["40", "70"]})
    twice = assert_problem(twice, 422, "malformed-form")
    assert "other_foot_angle" in twice["detail"] and "more than once" in twice["detail"]
    strict = {"landmarks": {"first_mtp": [1, 2]}, "image": {"width": 10, "height": False}}
    body = assert_problem(httpx.post(server.url + "/v1/measurements/from-landmarks", json=strict), 422, "invalid-request")
    assert body["errors"][0]["loc"][-1] == "height"
    assert_problem(httpx.post(server.url + "/v1/measurements/from-landmarks", content=b"\xff\xfe",
                              headers={"content-type": "application/json"}), 422, "invalid-request")
    assert_problem(httpx.post(server.url + "/v1/measurements/from-landmarks", json={}), 422, "invalid-request")
    assert_problem(httpx.post(server.url + "/v1/measurements/from-landmarks", content=b"{not json",
                              headers={"content-type": "application/json"}), 422, "invalid-request")


def test_unusable_landmarks_are_422(server):
    only_two = {"landmarks": {"first_mtp": {"x": 1, "y": 2}, "hallux_ip": {"x": 5, "y": 1}}}
    body = assert_problem(httpx.post(server.url + "/v1/measurements/from-landmarks", json=only_two),
                          422, "unusable-landmarks")
    assert "first_metatarsal" in body["detail"]


def test_wrong_body_type_and_unknown_paths(server):
    assert_problem(httpx.post(server.url + "/v1/measurements", json={"photo": "x"}), 415, "not-multipart")
    assert_problem(httpx.get(server.url + "/v1/nothing"), 404, "not-found")
    assert_problem(httpx.get(server.url + "/v1/measurements"), 405, "method-not-allowed")


# ---- privacy, logs, access -----------------------------------------------------------

def test_request_ids_and_structured_logs_without_photos_or_names(server, marker_photo):
    data, _ = marker_photo
    response = post_photo(server.url, data, filename="jane-doe-left-foot.jpg", headers={"x-request-id": "app-42.7"})
    assert response.headers["x-request-id"] == "app-42.7" and response.json()["request_id"] == "app-42.7"
    weird = httpx.get(server.url + "/healthz", headers={"x-request-id": "bad/id*" * 20})
    assert weird.headers["x-request-id"] != "bad/id*" * 20 and len(weird.headers["x-request-id"]) == 32
    time.sleep(0.3)
    log = server.log()
    assert "jane-doe" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    mine = [e for e in lines if e.get("request_id") == "app-42.7"]
    assert mine and mine[0]["route"] == "/v1/measurements" and mine[0]["status"] == 200
    assert mine[0]["duration_ms"] > 0 and mine[0]["result"] == "ok"
    assert max(len(line) for line in log.splitlines()) < 2000  # nothing photo-sized


def test_cors_allow_list(server):
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    ok = httpx.options(server.url + "/v1/measurements", headers={"origin": "https://app.example", **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.options(server.url + "/v1/measurements", headers={"origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    simple = httpx.get(server.url + "/v1/protocols", headers={"origin": "https://app.example"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_api_keys(tight_server):
    url = tight_server.url
    assert httpx.get(url + "/healthz").status_code == 200
    assert httpx.get(url + "/readyz").status_code == 200
    missing = assert_problem(httpx.get(url + "/v1/protocols"), 401, "unauthorized")
    assert "bearer" in missing["detail"].lower()
    assert httpx.get(url + "/v1/protocols").headers["www-authenticate"] == "Bearer"
    assert_problem(httpx.get(url + "/v1/protocols", headers={"authorization": "Bearer key-three"}), 401, "unauthorized")
    assert_problem(httpx.post(url + "/v1/measurements", files={"photo": ("a", b"x")}), 401, "unauthorized")
    assert httpx.get(url + "/v1/protocols", headers={"authorization": "Bearer key-two"}).status_code == 200


# ---- load: timeouts, a full queue --------------------------------------------------------

def test_time_limit_then_full_queue_is_503_with_retry_after(tight_server, big_png):
    """One worker, no queue, 50 ms limit: a big photo times out (504) and keeps the worker busy, so
    the next one is refused at once (503 + Retry-After) instead of waiting."""
    auth = {"authorization": "Bearer key-one"}
    started = time.perf_counter()
    slow = post_photo(tight_server.url, big_png, content_type="image/png", headers=auth)
    assert_problem(slow, 504, "timeout")
    refused = post_photo(tight_server.url, big_png, content_type="image/png", headers=auth)
    body = assert_problem(refused, 503, "overloaded")
    assert int(refused.headers["retry-after"]) >= 1 and "retry" in body["detail"]
    assert time.perf_counter() - started < 5
    points = {"landmarks": {"heel": [0, 90], "first_metatarsal": [50, 40], "first_mtp": [80, 35], "hallux_ip": [95, 25]}}
    assert httpx.post(tight_server.url + "/v1/measurements/from-landmarks", json=points, headers=auth).status_code == 200
    deadline = time.monotonic() + 30  # the worker finishes the abandoned job, then the slot is free again
    while httpx.get(tight_server.url + "/readyz").json()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(tight_server.url + "/readyz").json()["in_flight"] == 0
    metrics = httpx.get(tight_server.url + "/metrics").text
    assert "toeangle_rejected_total 1.0" in metrics and "toeangle_timeouts_total 1.0" in metrics


def test_overload_is_refused_cleanly(server, marker_photo):
    """3x the capacity at once: every answer is a 200 or a 503 with Retry-After, nothing else."""
    data, _ = marker_photo
    statuses, lock = [], threading.Lock()

    def one():
        response = post_photo(server.url, data)
        with lock:
            statuses.append((response.status_code, response.headers.get("retry-after")))

    threads = [threading.Thread(target=one) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [s for s, _ in statuses]
    assert set(codes) <= {200, 503} and codes.count(200) >= 10, codes
    assert all(retry and int(retry) >= 1 for s, retry in statuses if s == 503)


def test_graceful_shutdown_finishes_in_flight_requests(tmp_path, big_png):
    srv = start_server(tmp_path, "graceful", workers="1", queue_size="4")
    results = []

    def one():
        results.append(post_photo(srv.url, big_png, content_type="image/png").status_code)

    try:
        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while httpx.get(srv.url + "/readyz").json()["in_flight"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        rc = srv.stop()  # SIGTERM while three big photos are queued or running
        for t in threads:
            t.join()
    finally:
        srv.stop()
    assert results == [200, 200, 200]
    assert rc in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught once it has shut down
    assert '"workers stopped"' in srv.log()
    with pytest.raises(httpx.TransportError):
        httpx.get(srv.url + "/healthz")
