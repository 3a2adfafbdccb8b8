"""The posture read from photos by the keypoint model, end to end: real photos and the sample renders
through the CLI, the pipeline, the service and batch. No posture is constructed here; these pass only
with a model whose stage 1 has the posture head (issue 22). With v8 (and v9, whose posture head was
left out) they fail: test_the_model_reads_a_posture says why. They are not skipped on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from toeangle.batch.rows import Row
from toeangle.cli import main
from toeangle.pipeline import Measurer
from toeangle.schema import MeasureOptions

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
STANDING_PHOTO = REPO.parent / "shared" / "real-photos" / "solol" / "l.jpg"

# The test each sample render shows (training/synth.py posture_labels of its ground truth: setting, hand,
# toe angle); None: a relaxed foot, toe resting, which is no test.
SAMPLE_TESTS = {
    "normal_right_closeup.jpg": "weight_bearing",  # standing, toe lifted to 81 deg
    "held_by_hand_right.jpg": "passive_nwb",  # off the floor, a hand pushes the toe
    "restricted_left_closeup.jpg": "passive_nwb",
    "normal_left_closeup.jpg": "active_nwb",  # off the floor, no hand, toe at 90 deg
    "normal_right_leg.jpg": "active_nwb",
    "heel_raise_left.jpg": "heel_raise",
    "normal_left_leg.jpg": "heel_raise",
}
RELAXED_STANDING_SAMPLES = ("restricted_right_closeup.jpg", "standing_toe_lift_right.jpg")  # toe at 20 and 0 deg


@pytest.fixture(scope="module")
def measurer() -> Measurer:
    return Measurer()


def read(measurer: Measurer, name: str, protocol: str):
    return measurer.measure_photo((SAMPLES / name).read_bytes(), MeasureOptions(protocol=protocol)).result


def test_the_model_reads_a_posture(measurer):
    result = read(measurer, "held_by_hand_right.jpg", "passive_nwb")
    assert result.posture is not None, "the keypoint model gives no posture: its stage 1 lacks the posture head"


@pytest.mark.parametrize("name, test", sorted(SAMPLE_TESTS.items()))
def test_auto_picks_the_test_each_sample_shows_and_it_matches(measurer, name, test):
    result = read(measurer, name, "auto")
    assert result.posture is not None and result.posture.protocol == test and result.posture.fit == "match", \
        result.posture
    if result.status == "ok":
        assert result.verdict.protocol == test and result.verdict.label != "test-mismatch"


@pytest.mark.parametrize("name, test", sorted(SAMPLE_TESTS.items()))
def test_under_another_test_each_sample_is_a_mismatch_that_suggests_its_own(measurer, name, test):
    other = "weight_bearing" if test in ("passive_nwb", "active_nwb") else "passive_nwb"
    result = read(measurer, name, other)
    assert result.posture is not None and result.posture.fit == "mismatch"
    assert result.posture.suggested_protocol == test
    if result.status == "ok":
        assert result.verdict.label == "test-mismatch" and result.verdict.suggested_protocol == test
        assert result.routine is None and result.measurement.angle_deg is not None


@pytest.mark.parametrize("name", RELAXED_STANDING_SAMPLES)
def test_a_relaxed_standing_sample_is_never_judged_by_the_passive_test(measurer, name):
    result = read(measurer, name, "passive_nwb")
    assert result.posture is not None and result.posture.fit == "mismatch"
    assert result.posture.suggested_protocol == "weight_bearing"
    if result.status == "ok":
        assert result.verdict.label == "test-mismatch"


def test_the_standing_real_photo_says_standing_and_suggests_weight_bearing(capsys):
    """The issue's own check: a real standing phone photo under the default test."""
    main(["measure", str(STANDING_PHOTO)])
    out = capsys.readouterr().out
    assert "standing foot" in out and "suggested test: weight_bearing" in out, out
    main(["measure", str(STANDING_PHOTO), "--protocol", "auto", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["posture"]["protocol"] == "weight_bearing"
    if result["status"] == "ok":
        assert result["verdict"]["protocol"] == "weight_bearing"


def test_the_service_takes_auto_for_a_photo(server):
    files = {"photo": ("p.jpg", (SAMPLES / "normal_right_closeup.jpg").read_bytes(), "image/jpeg")}
    got = httpx.post(server.url + "/v1/measurements", files=files, data={"protocol": "auto"}, timeout=60).json()
    assert got["options"]["protocol"] == "auto" and got["posture"]["protocol"] == "weight_bearing"
    assert set(got["posture"]["tests"]) == {"passive_nwb", "active_nwb", "weight_bearing", "heel_raise"}
    png = httpx.post(server.url + "/v1/measurements/overlay", files=files, data={"protocol": "passive_nwb"}, timeout=60)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    if png.headers["x-toeangle-status"] == "ok":
        assert png.headers["x-toeangle-verdict"] == "test-mismatch"


def test_batch_auto_writes_the_test_each_photo_was_judged_by(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("held_by_hand_right.jpg", "normal_right_closeup.jpg"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    out = tmp_path / "results.jsonl"
    assert main(["batch", str(folder), "--out", str(out), "--protocol", "auto", "--workers", "1"]) in (0, 1)
    rows = {Path(r.path).name: r for r in map(Row.from_json, out.read_text().splitlines())}
    assert rows["held_by_hand_right.jpg"].judged_by == "passive_nwb" and rows["held_by_hand_right.jpg"].protocol == "auto"
    assert rows["normal_right_closeup.jpg"].judged_by == "weight_bearing"
    assert all(r.posture_fit == "match" and r.standing is not None for r in rows.values())
    summary = capsys.readouterr()
    assert "Test (posture fit): passive_nwb match: 1, weight_bearing match: 1" in summary.out + summary.err
