"""A typed client generated from the service's OpenAPI document (openapi-python-client) measures a sample
photo, then re-scores dragged points, against a real server: what a phone app's developer would do."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import attrs
import httpx
import pytest

from toeangle.schema import Landmarks, MeasureOptions, ViewCorrection
from toeangle.service.routers.measurements import points_measurer
from toeangle.settings import Settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
# image/png is bytes to the client (the generator reads only JSON, text and octet-stream); no formatter run
CONFIG = "content_type_overrides:\n  image/png: application/octet-stream\npost_hooks: []\n"


@pytest.fixture(scope="module")
def client_package(server, tmp_path_factory):
    """Generate `toeangle_client` from the running server's /openapi.json and import it."""
    if not GENERATOR.exists():
        pytest.skip("openapi-python-client is in the dev extra: pip install -e '.[dev]'")
    folder = tmp_path_factory.mktemp("client")
    (folder / "openapi.json").write_text(json.dumps(httpx.get(server.url + "/openapi.json").json()))
    (folder / "config.yaml").write_text(CONFIG)
    run = subprocess.run([str(GENERATOR), "generate", "--path", str(folder / "openapi.json"), "--meta", "none",
                          "--output-path", str(folder / "toeangle_client"), "--config", str(folder / "config.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout, run.stdout  # every operation and response was understood
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("toeangle_client")
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == "toeangle_client" or m.startswith("toeangle_client.")]:
            del sys.modules[name]


def test_a_generated_client_measures_and_rescores_dragged_points(client_package, server):
    from toeangle_client import Client
    from toeangle_client.api.measurements import measurements_create, measurements_from_landmarks, measurements_overlay
    from toeangle_client.models import (
        FromLandmarks,
        ImageInfo,
        MeasurementResponse,
        MeasurementResponseStatus,
        MeasurementsCreateBody,
        MeasurementsOverlayBody,
        Protocol,
        ReasonCode,
        Side,
    )
    from toeangle_client.models import MeasureOptions as ClientOptions
    from toeangle_client.types import File

    client = Client(base_url=server.url, timeout=httpx.Timeout(30))

    def photo(path: Path) -> File:
        return File(payload=BytesIO(path.read_bytes()), file_name="photo", mime_type="image/jpeg")

    # one enum per concept, shared by the form, the options, the verdict and the protocols list (the form and
    # the options also take "auto": Protocol | Literal["auto"])
    assert {p.value for p in Protocol} == {"passive_nwb", "active_nwb", "weight_bearing", "heel_raise", "walking",
                                           "running"}
    response = measurements_create.sync_detailed(client=client, body=MeasurementsCreateBody(
        photo=photo(SAMPLES / "restricted_right_leg.jpg"), protocol=Protocol.PASSIVE_NWB, side=Side.RIGHT))
    first = response.parsed
    assert isinstance(first, MeasurementResponse) and first.status == MeasurementResponseStatus.OK
    assert response.headers["X-Request-ID"] == first.request_id
    assert first.options.protocol is Protocol.PASSIVE_NWB and first.options.side is Side.RIGHT
    assert first.verdict.protocol is Protocol.PASSIVE_NWB
    assert first.landmarks.hallux_ip.x == round(first.landmarks.hallux_ip.x, 2)  # 0.01 px

    # the user drags the toe joint up by 40 px; the app sends the points back with the photo's
    # view correction and the points' sigmas
    dragged = attrs.evolve(first.landmarks, hallux_ip=attrs.evolve(first.landmarks.hallux_ip,
                                                                   y=first.landmarks.hallux_ip.y - 40))
    body = FromLandmarks(landmarks=dragged, options=ClientOptions(protocol=Protocol.PASSIVE_NWB, side=Side.RIGHT),
                         image=ImageInfo(width=first.image.width, height=first.image.height),
                         view_correction=first.measurement.view_correction)
    again = measurements_from_landmarks.sync(client=client, body=body)
    assert isinstance(again, MeasurementResponse) and again.detector == "manual"
    assert again.measurement.angle_deg > first.measurement.angle_deg + 5
    assert again.measurement.uncertainty_deg is not None  # the sigmas came back with the points

    # the same points measured in-process: the client sent exactly what the user saw
    expected = points_measurer(Settings()).measure_landmarks(
        Landmarks.model_validate(dragged.to_dict()), MeasureOptions(protocol="passive_nwb", side="right"),
        view_correction=ViewCorrection.model_validate(first.measurement.view_correction.to_dict()))
    assert again.measurement.angle_deg == pytest.approx(expected.measurement.angle_deg, abs=0.01)
    assert again.verdict.label.value == expected.verdict.label

    # a refused photo: stable codes beside the texts, for the app to show in its own language
    refused = measurements_create.sync(client=client, body=MeasurementsCreateBody(
        photo=photo(SAMPLES / "refused" / "outer_side_left_closeup.jpg")))
    assert refused.status == MeasurementResponseStatus.UNMEASURABLE
    assert refused.reason_codes == [ReasonCode.OUTER_SIDE] and len(refused.reasons) == 1

    # the annotated picture is a typed response too, with its declared headers
    picture = measurements_overlay.sync_detailed(client=client, body=MeasurementsOverlayBody(
        photo=photo(SAMPLES / "restricted_right_leg.jpg")))
    assert picture.status_code == 200 and picture.parsed.payload.read(8) == b"\x89PNG\r\n\x1a\n"
    assert picture.headers["X-Toeangle-Status"] == "ok"
