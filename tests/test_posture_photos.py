"""The posture read from real photos, end to end: the two ordinary standing phone photos of
../shared/real-photos (MIT) through the CLI, the service and batch. Nothing is constructed: the model
finds the points, posture_reading.py reads them. Both photos are refused for their view by the model
(v9 puts them 65 and 43 degrees from side-on), and the answer still says which test they show."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from toeangle.batch.rows import Row
from toeangle.cli import main
from toeangle.pipeline import Measurer
from toeangle.schema import MeasureOptions

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real-photos" / "solol"
STANDING_PHOTOS = (REAL / "l.jpg", REAL / "ad.jpg")  # inner side, standing, big toe resting

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="needs ../shared/real-photos")


@pytest.fixture(scope="module")
def measurer() -> Measurer:
    return Measurer()


@pytest.mark.parametrize("photo", STANDING_PHOTOS, ids=lambda p: p.name)
def test_a_relaxed_standing_photo_is_never_judged_by_the_passive_test(measurer, photo):
    result = measurer.measure_photo(photo.read_bytes(), MeasureOptions()).result
    p = result.posture
    assert p is not None and p.fit == "mismatch" and p.suggested_protocol == "weight_bearing"
    assert "relaxed standing foot" in p.seen
    if result.status == "ok":
        assert result.verdict.label == "test-mismatch" and result.routine is None


def test_the_standing_real_photo_says_standing_and_suggests_weight_bearing(capsys):
    """The issue's own check: a real standing phone photo under the default test."""
    main(["measure", str(STANDING_PHOTOS[0])])
    out = capsys.readouterr().out
    assert "standing foot" in out and "suggested test: weight_bearing" in out, out
    main(["measure", str(STANDING_PHOTOS[0]), "--protocol", "auto", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["posture"]["protocol"] == "weight_bearing" and result["posture"]["fit"] == "mismatch"
    assert "helper lifting the big toe" in result["posture"]["advice"]


def test_the_service_takes_auto_for_a_photo(server):
    files = {"photo": ("p.jpg", STANDING_PHOTOS[1].read_bytes(), "image/jpeg")}
    got = httpx.post(server.url + "/v1/measurements", files=files, data={"protocol": "auto"}, timeout=60).json()
    assert got["options"]["protocol"] == "auto" and got["posture"]["protocol"] == "weight_bearing"
    assert set(got["posture"]["tests"]) == {"passive_nwb", "active_nwb", "weight_bearing", "heel_raise"}
    png = httpx.post(server.url + "/v1/measurements/overlay", files=files, data={"protocol": "passive_nwb"}, timeout=60)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"


def test_dragged_points_are_read_again(server, measurer):
    """The app sends the photo's points back after a drag; the posture is read from them, not kept."""
    first = measurer.measure_photo(STANDING_PHOTOS[0].read_bytes(), MeasureOptions()).result
    points = {name: {"x": p.x, "y": p.y} for name, p in first.landmarks.present().items()}
    body = {"landmarks": points, "options": {"protocol": "auto"},
            "image": {"width": first.image.width, "height": first.image.height}}
    got = httpx.post(server.url + "/v1/measurements/from-landmarks", json=body, timeout=30).json()
    assert got["posture"]["protocol"] == "weight_bearing" and got["posture"]["fit"] == "mismatch"
    joint, tip = points["first_mtp"], points["hallux_tip"]
    length = ((tip["x"] - joint["x"]) ** 2 + (tip["y"] - joint["y"]) ** 2) ** 0.5
    lifted = {"x": joint["x"] + 0.7 * length * (1 if tip["x"] > joint["x"] else -1), "y": joint["y"] - 0.7 * length}
    body["landmarks"] = {**points, "hallux_tip": lifted, "hallux_ip": {
        "x": (joint["x"] + lifted["x"]) / 2, "y": (joint["y"] + lifted["y"]) / 2}}
    got = httpx.post(server.url + "/v1/measurements/from-landmarks", json=body, timeout=30).json()
    assert got["status"] == "ok" and got["posture"]["fit"] == "match"  # toe dragged up: the Jack test
    assert got["verdict"]["protocol"] == "weight_bearing"


def test_batch_auto_writes_the_test_each_photo_was_judged_by(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in STANDING_PHOTOS:
        (folder / photo.name).write_bytes(photo.read_bytes())
    out = tmp_path / "results.jsonl"
    assert main(["batch", str(folder), "--out", str(out), "--protocol", "auto", "--workers", "1"]) in (0, 1)
    rows = {Path(r.path).name: r for r in map(Row.from_json, out.read_text().splitlines())}
    assert all(r.judged_by == "weight_bearing" and r.protocol == "auto" and r.posture_fit == "mismatch"
               and r.standing is not None for r in rows.values())
    summary = capsys.readouterr()
    assert "Test (posture fit): weight_bearing (mismatch): 2" in summary.out + summary.err
