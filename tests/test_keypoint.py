"""The shipped markerless model: loads, meets its error bound on samples/, and refuses what it cannot read."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REAL_PHOTOS, REPO, jpeg_bytes

from toeangle.detectors import DETECTORS, build_detector
from toeangle.detectors.contract import STAGE2
from toeangle.detectors.crops import CROP_SIDE_METATARSALS
from toeangle.detectors.keypoint import (
    AREA_REST_FACTOR,
    KeypointModel,
    ModelMissingError,
    area_shrink,
    symmetric_block,
    whole_blocks,
)
from toeangle.pipeline import Measurer
from toeangle.schema import Landmarks, MeasureOptions
from toeangle.settings import Settings

SAMPLES = REPO / "samples"
TRUTH = json.loads((SAMPLES / "ground_truth.json").read_text())
ANGLE_BOUND_DEG = 10.0
"""bench/accuracy.py: 95th-percentile error vs the 3D truth for views within 20 degrees of side-on (v2 9.6, v5 6.9, v6 5.5, v7 and v8 4.9)."""


@pytest.fixture(scope="module")
def measurer() -> Measurer:
    return Measurer(Settings(detector="keypoint"))


def _rgb(name: str) -> np.ndarray:
    return cv2.imread(str(SAMPLES / name))[..., ::-1].copy()


def test_model_files_match_their_card_and_the_contract():
    KeypointModel(REPO / "models")  # checks the sha256 of both stages, and their input and outputs against contract.py


def test_a_tampered_model_is_refused(tmp_path):
    shutil.copytree(REPO / "models", tmp_path / "models")
    onnx = tmp_path / "models" / "foot_stage2.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelMissingError, match="sha256"):
        KeypointModel(tmp_path / "models")


def test_a_model_that_breaks_the_contract_is_refused(tmp_path):
    """Stage 2's file in stage 1's place has a matching checksum but not stage 1's outputs."""
    shutil.copytree(REPO / "models", tmp_path / "models")
    card_path = tmp_path / "models" / "keypoints.json"
    card = json.loads(card_path.read_text())
    card["stage1"].update(file=card["stage2"]["file"], sha256=card["stage2"]["sha256"])
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelMissingError, match="contract"):
        KeypointModel(tmp_path / "models")


def test_auto_detector_includes_the_model():
    assert "keypoint" in DETECTORS
    assert "keypoint" in build_detector(Settings(detector="auto")).name


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_samples_are_measured_within_the_benchmark_error(measurer, name):
    truth = TRUTH[name]
    result = measurer.measure_photo((SAMPLES / name).read_bytes(), MeasureOptions()).result
    assert result.status == "ok", result.reasons
    assert result.detector.startswith("keypoint")
    assert abs(result.measurement.angle_deg - truth["angle_deg"]) <= ANGLE_BOUND_DEG
    assert result.measurement.uncertainty_deg is not None and result.measurement.uncertainty_deg > 0
    foot = truth["foot_px"]
    for landmark, point in result.landmarks.present().items():
        error = np.hypot(point.x - truth["landmarks"][landmark][0], point.y - truth["landmarks"][landmark][1])
        # The four angle points come from the forefoot stage; the heel (only the sign) from the coarse stage.
        # v9's coarse stage places it 0.16 and 0.25 foot lengths off on two samples whose heel is dark or at the
        # photo's edge (v8: 0.13-0.15), while on the 400 benchmark renders all points land within 5% of the foot
        # length as often as v8's (97.2% against 97.3%) and on real photos far less often grossly off.
        assert error <= (0.3 if landmark == "heel" else 0.05) * foot, (landmark, error)
        assert 0 <= point.confidence <= 1 and (landmark == "heel" or point.sigma_px > 0)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_points_dragged_into_place_keep_the_photos_perspective(measurer, name):
    """The app's drag-and-ask-again path: the sample's true points, sent back with the photo's view correction."""
    truth = TRUTH[name]
    first = measurer.measure_photo((SAMPLES / name).read_bytes(), MeasureOptions()).result
    correction = first.measurement.view_correction
    assert correction.moved_points_deg is not None and correction.moved_points_sigma_deg > 0
    again = measurer.measure_landmarks(Landmarks.model_validate(truth["landmarks"]), MeasureOptions(), first.image,
                                       correction)
    assert again.measurement.view_correction.degrees == correction.moved_points_deg
    assert abs(again.measurement.angle_deg - truth["angle_deg"]) <= ANGLE_BOUND_DEG


def test_a_heel_on_the_wrong_side_is_mostly_caught_instead_of_flipping_the_sign(measurer, monkeypatch):
    """Stage 1 sometimes puts the heel across the metatarsal axis, which would flip the angle's sign.

    With every sample's heel mirrored across that axis, all 12 are refused (measured; v3, which
    compared probabilities instead of logits, caught 10); the bound leaves one photo of slack.
    """
    model = measurer.detector.model
    honest = model.stage1

    def heel_across_the_axis(rgb):
        first = honest(rgb)
        met, mtp = first.points[1], first.points[2]
        axis = (mtp - met) / np.linalg.norm(mtp - met)
        rel = first.points[0] - met
        points = first.points.copy()
        points[0] = met + 2 * np.dot(rel, axis) * axis - rel  # reflected across the axis line
        return replace(first, points=points)

    monkeypatch.setattr(model, "stage1", heel_across_the_axis)
    caught = 0
    for name in TRUTH:
        result = measurer.measure_photo((SAMPLES / name).read_bytes()).result
        caught += any("heel could not be placed" in r for r in result.reasons)
    assert caught >= 11, caught


def test_shifted_forefoot_crops_map_back_onto_the_same_points(measurer):
    """Test-time shifts only help if each shifted crop's answer is mapped back to the photo correctly."""
    model = measurer.detector.model
    name = "restricted_left_closeup.jpg"
    lm = TRUTH[name]["landmarks"]
    args = (_rgb(name), lm["heel"], lm["first_metatarsal"], lm["first_mtp"])
    single = model.stage2(*args)
    axis_px = np.hypot(*np.subtract(lm["first_mtp"], lm["first_metatarsal"]))
    scale = STAGE2.input_size / (CROP_SIDE_METATARSALS * axis_px)  # crop pixels per photo pixel
    for shift in [(6, 0), (0, -6)]:
        moved = model.stage2(*args, shifts=[shift])
        # a crop mapped back the wrong way round would land 12 crop pixels away
        assert np.hypot(*(moved.points - single.points).T).max() * scale < 3, shift
    repeated = model.stage2(*args, shifts=[(0, 0)] * 3)
    np.testing.assert_allclose(repeated.points, single.points, atol=1e-4)
    np.testing.assert_allclose(repeated.spread, single.spread, rtol=1e-4)
    averaged = model.stage2(*args, shifts=model.test_time_shifts)
    assert len(model.test_time_shifts) > 1 and np.all(averaged.spread > 0)


def test_shrinking_by_whole_blocks_first_matches_a_one_step_area_resize():
    """The fast path (blocks first, then the rest) must give the pixels a one-step area resize gives, to within
    the rounding of averaging twice, or the networks would see other crops than they were trained on."""
    rgb = _rgb("normal_left_closeup.jpg")
    h, w = rgb.shape[:2]
    block = symmetric_block(w, h, w // 97 // AREA_REST_FACTOR)
    assert block >= 2 and w % block % 2 == 0 and h % block % 2 == 0
    tx, ty = w % block // 2, h % block // 2
    trimmed = rgb[ty:h - ty, tx:w - tx]
    size = (97, round(97 * trimmed.shape[0] / trimmed.shape[1]))
    diff = np.abs(area_shrink(trimmed, block, size).astype(int)
                  - cv2.resize(trimmed, size, interpolation=cv2.INTER_AREA).astype(int))
    assert diff.mean() < 0.3 and np.percentile(diff, 99) <= 2


@pytest.mark.parametrize(("start", "end", "block", "limit"), [
    (10, 95, 8, 200), (0, 95, 8, 96), (3, 200, 7, 200), (0, 200, 7, 200), (150, 199, 16, 200), (5, 6, 3, 9)])
def test_a_crops_region_is_cut_in_whole_blocks_inside_the_photo(start, end, block, limit):
    cut = whole_blocks(start, end, block, limit)
    assert 0 <= cut[0] < cut[1] <= limit and (cut[1] - cut[0]) % block == 0
    if (end - start) + -(end - start) % block <= limit:  # room for the whole region: it is widened, never cut
        assert cut[0] <= start and cut[1] >= end


def test_a_photo_shorter_than_one_block_keeps_its_region():
    assert whole_blocks(0, 5, 8, 5) == (0, 5)


def count_stage1(model: KeypointModel, monkeypatch) -> list[tuple[int, ...]]:
    """The shapes of the images stage 1 is run on, from now on, in order."""
    calls = []
    honest = model.stage1

    def counted(image):
        calls.append(image.shape)
        return honest(image)

    monkeypatch.setattr(model, "stage1", counted)
    return calls


def test_stage_one_looks_again_at_a_small_foot_and_maps_its_points_back(measurer, monkeypatch):
    """On a photo where the foot is small, the second stage-1 pass must run and land in photo pixels."""
    model = measurer.detector.model
    name = "restricted_right_leg.jpg"
    rgb, truth = _rgb(name), TRUTH[name]
    pad = 600  # the same photo on a wide grey border: the foot becomes small in it
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    calls = count_stage1(model, monkeypatch)
    located = model.locate(padded)
    assert len(calls) == 2 and calls[1][0] < padded.shape[0] / 2  # the second look is at a crop
    expected = np.array([truth["landmarks"][k] for k in ("heel", "first_metatarsal", "first_mtp", "hallux_ip",
                                                          "hallux_tip")]) + pad
    errors = np.hypot(*(located.points - expected).T)
    assert errors.max() <= 0.12 * truth["foot_px"], errors


def test_the_foot_is_located_once_per_photo(measurer, monkeypatch):
    """Under `auto` the sticker check locates the foot, then the keypoint detector asks again: the same photo
    object gets the remembered answer; another photo (even an equal copy) is read anew."""
    model = measurer.detector.model
    rgb = _rgb("normal_left_closeup.jpg")
    calls = count_stage1(model, monkeypatch)
    first = model.locate(rgb)
    looks = len(calls)
    assert model.locate(rgb) is first and len(calls) == looks
    again = model.locate(rgb.copy())
    assert len(calls) == 2 * looks
    np.testing.assert_allclose(again.points, first.points)


TURNS = {"90": lambda rgb: cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE), "180": lambda rgb: cv2.rotate(rgb, cv2.ROTATE_180),
         "270": lambda rgb: cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE), "mirror": lambda rgb: rgb[:, ::-1],
         "mirror-90": lambda rgb: cv2.rotate(rgb[:, ::-1], cv2.ROTATE_90_CLOCKWISE)}
"""How a phone may hand over the same photo: turned by quarter turns, or mirrored (a front camera)."""


@pytest.mark.parametrize("path", [SAMPLES / "normal_left_closeup.jpg", SAMPLES / "restricted_right_leg.jpg",
                                  SAMPLES / "held_by_hand_right.jpg", *REAL_PHOTOS,
                                  *sorted((REAL_PHOTOS[0].parents[1] / "solol").glob("*.jpg") if REAL_PHOTOS else [])],
                         ids=lambda p: p.stem)
def test_turned_and_mirrored_copies_of_a_photo_get_the_same_answer(measurer, path):
    """Issue 18: 0/90/180/270-degree and mirrored copies give the same status and angles within 2 degrees."""
    rgb = cv2.imread(str(path))[..., ::-1]
    first = measurer.measure_photo(jpeg_bytes(np.ascontiguousarray(rgb)), MeasureOptions()).result
    for name, turn in TURNS.items():
        other = measurer.measure_photo(jpeg_bytes(np.ascontiguousarray(turn(rgb))), MeasureOptions()).result
        assert other.status == first.status, (name, first.reasons, other.reasons)
        if first.status == "ok":
            assert abs(other.measurement.angle_deg - first.measurement.angle_deg) <= 2.0, name


def _turned_points(points: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Pixel-centre points on a photo of ``shape`` -> the same points on its copy turned by TURNS[name]."""
    h, w = shape[:2]
    x, y = points[..., 0], points[..., 1]
    turned = {"90": (h - 1 - y, x), "180": (w - 1 - x, h - 1 - y), "270": (y, w - 1 - x), "mirror": (w - 1 - x, y),
              "mirror-90": (h - 1 - y, w - 1 - x)}[name]
    return np.stack(turned, -1)


@pytest.mark.parametrize("name", ["normal_left_closeup.jpg", "held_by_hand_right.jpg"])
def test_the_model_reads_a_turned_copy_as_the_same_points(measurer, name):
    """The same pixels turned give the same points (to the rounding of an area-averaged resize, which sums rows
    and columns in another order): odd sizes (here cut to odd widths and heights) once put the letterboxed photo
    and the crops a pixel off, and on 3 of 16 measured real photos a turned copy then crossed a gate's limit
    that the upright one did not."""
    model = measurer.detector.model
    rgb = _rgb(name)
    rgb = np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2 - 1, : rgb.shape[1] // 2 * 2 - 3])
    first = model.locate(rgb)
    second = model.stage2(rgb, *first.points[:3], shifts=model.test_time_shifts)
    for turn_name, turn in TURNS.items():
        other = np.ascontiguousarray(turn(rgb))
        located = model.locate(other)
        np.testing.assert_allclose(located.points, _turned_points(first.points, turn_name, rgb.shape), atol=0.05)
        forefoot = model.stage2(other, *located.points[:3], shifts=model.test_time_shifts)
        # stage 2 is cut by cv2.warpAffine, whose 1/32 px fixed point differs a little with the direction
        assert np.abs(forefoot.points - _turned_points(second.points, turn_name, rgb.shape)).max() < 0.3, turn_name


@pytest.mark.parametrize(("scatter", "view", "codes"), [
    (0.5, 60.0, ("foot_unreliable", "off_axis")), (0.5, 10.0, ("foot_unreliable",)), (0.05, 60.0, ("off_axis",))])
def test_copies_that_scatter_are_named_before_the_view(measurer, scatter, view, codes):
    """A picture whose turned copies put the landmarks in different places holds no foot the model can read. The
    four non-foot pictures of the real set whose presence passes all scatter so (0.23-1.51 foot lengths), and their
    view estimate (58-65 degrees) once gave "the view is far from side-on" as the only reason for a picture of a cat."""
    from toeangle.decode import DecodedImage
    from toeangle.detectors.keypoint import Stage1

    first = Stage1(points=np.array([[0, 90], [200, 60], [300, 80], [340, 70], [380, 80]], float), presence=0.99,
                   in_frame=np.ones(5), off_axis_deg=view, disagreement=scatter)
    image = DecodedImage(rgb=np.zeros((480, 640, 3), np.uint8), original_width=640, original_height=480, format="PNG")
    assert tuple(r.code for r in measurer.detector._stage1_reasons(first, image)) == codes


def test_landmarks_come_back_in_original_pixels_of_a_large_photo(measurer):
    name = "restricted_right_leg.jpg"
    big = cv2.resize(_rgb(name), None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)  # decoded reduced
    result = measurer.measure_photo(jpeg_bytes(big), MeasureOptions()).result
    assert result.image.width == big.shape[1]
    mtp = result.landmarks.first_mtp
    truth = np.array(TRUTH[name]["landmarks"]["first_mtp"]) * 2.5 + 0.75
    assert np.hypot(mtp.x - truth[0], mtp.y - truth[1]) <= 0.05 * TRUTH[name]["foot_px"] * 2.5


def test_an_image_without_a_foot_is_unmeasurable(measurer):
    rng = np.random.default_rng(3)
    wall = np.clip(np.full((480, 640, 3), 180.0) + rng.normal(0, 12, (480, 640, 3)), 0, 255).astype(np.uint8)
    cv2.rectangle(wall, (100, 300), (400, 420), (90, 60, 40), -1)
    result = measurer.measure_photo(jpeg_bytes(wall), MeasureOptions()).result
    assert result.status == "unmeasurable"
    assert result.measurement is None and result.verdict is None


def test_a_foot_cut_off_at_the_toes_is_unmeasurable(measurer):
    """v9 refuses this one as "no foot" (presence under 0.9), not as cut off: its stage 1 calls the cut-off
    toe points in frame (0.89-0.98; models/MODEL_CARD.md, Limits)."""
    name = "normal_right_leg.jpg"
    rgb, truth = _rgb(name), TRUTH[name]["landmarks"]
    mtp, tip = np.array(truth["first_mtp"]), np.array(truth["hallux_tip"])
    # Keep the side of the photo away from the toes: cut just behind the MTP joint.
    axis = np.argmax(np.abs(tip - mtp))
    cut = int(mtp[axis] - np.sign(tip - mtp)[axis] * 10)
    crop = (rgb[:, :cut] if tip[0] > mtp[0] else rgb[:, cut:]) if axis == 0 else \
        (rgb[:cut] if tip[1] > mtp[1] else rgb[cut:])
    result = measurer.measure_photo(jpeg_bytes(np.ascontiguousarray(crop)), MeasureOptions()).result
    assert result.status == "unmeasurable"
    assert any("cut off" in r or "no foot" in r for r in result.reasons), result.reasons


@pytest.mark.parametrize("name", sorted(json.loads((SAMPLES / "refused" / "ground_truth.json").read_text())))
def test_the_outer_side_of_the_foot_is_refused_for_what_it_is(measurer, name):
    """Seen from outside, the big-toe joint is hidden behind the foot and its points would be guesses."""
    result = measurer.measure_photo((SAMPLES / "refused" / name).read_bytes(), MeasureOptions()).result
    assert result.status == "unmeasurable" and result.measurement is None
    assert any("outer side" in r for r in result.reasons), result.reasons


def test_a_blurred_photo_is_refused_as_blurred(measurer):
    blurred = cv2.GaussianBlur(_rgb("normal_left_closeup.jpg"), (0, 0), 12)
    result = measurer.measure_photo(jpeg_bytes(blurred), MeasureOptions()).result
    assert result.status == "unmeasurable"


# The real photos by eye: six look down on the foot from above; five show its inner side obliquely
# (FOCUS rgb_000607 and rgb_000010 most side-on; FOUND rgb_1 is rgb_000010 again).
OBLIQUE_MEDIAL = ("rgb_000607", "rgb_000010", "rgb_0", "rgb_1", "rgb_3")
TOP_DOWN = [p for p in REAL_PHOTOS if p.stem not in OBLIQUE_MEDIAL]
MEDIAL = [p for p in REAL_PHOTOS if p.stem in OBLIQUE_MEDIAL]
MASKS = {"rgb_000607": "FOCUS/mask_000607.png", "rgb_000010": "FOCUS/mask_000010.png", "rgb_1": "FOCUS/mask_000010.png"}
OUTLINES = {"rgb_3": [(188, 140), (215, 138), (245, 170), (268, 228), (285, 290), (320, 330), (400, 380), (480, 420),
                      (480, 560), (400, 580), (330, 530), (260, 480), (205, 460), (168, 430), (158, 395), (170, 330),
                      (175, 250), (180, 170)]}
"""FOUND photos have no masks: the foot and lower leg outlined by hand, in pixels of the 480x640 photo."""


def _foot_mask(path: Path) -> np.ndarray | None:
    if path.stem in MASKS:
        return cv2.imread(str(path.parents[1] / MASKS[path.stem]), cv2.IMREAD_GRAYSCALE) > 127
    if path.stem in OUTLINES:
        mask = np.zeros(cv2.imread(str(path)).shape[:2], np.uint8)
        return cv2.fillPoly(mask, [np.array(OUTLINES[path.stem], np.int32)], 1) > 0
    return None


@pytest.mark.skipif(not REAL_PHOTOS, reason="../shared/real-photos not found (set TOEANGLE_SHARED_DIR)")
@pytest.mark.parametrize("path", TOP_DOWN, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_top_down_real_photos_are_refused_with_a_reason(measurer, path):
    result = measurer.measure_photo(path.read_bytes(), MeasureOptions()).result
    assert result.status == "unmeasurable"
    assert result.reasons


LOOKING_DOWN = ("rgb_000972", "rgb_0", "rgb_2")
"""Real photos taken from well above the foot whose forefoot stage 2 reads at 43-58 degrees off side-on."""
STAGE2_VIEW_MISSES = ("rgb_000972",)
"""With stage 1's points stage 2 reads this one within 30 degrees (v9's stage 2 also rgb_2; v10's refuses that)."""


@pytest.mark.skipif(not REAL_PHOTOS, reason="../shared/real-photos not found (set TOEANGLE_SHARED_DIR)")
@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.xfail(
    p.stem in STAGE2_VIEW_MISSES, strict=True, reason="with stage 1's points stage 2 reads this view within 30 "
    "degrees and refuses it for the heel side only; in the product stage 1 refuses it as too far from side-on"))
    for p in REAL_PHOTOS if p.stem in LOOKING_DOWN], ids=lambda p: p.stem)
def test_the_view_check_does_not_rest_on_stage_one_alone(measurer, monkeypatch, path):
    """Stage 1 judges the view from the whole photo at 128 px and misses some (v7 measured 15 of 181
    calibration renders 45-90 degrees off); stage 2's off-axis head must refuse these by itself, even where
    stage 1's copies agree on where the points are."""
    locate = KeypointModel.locate
    monkeypatch.setattr(KeypointModel, "locate",
                        lambda self, *a: replace(locate(self, *a), off_axis_deg=0.0, disagreement=0.0))
    result = measurer.measure_photo(path.read_bytes(), MeasureOptions()).result
    assert result.status == "unmeasurable"
    assert any(r.startswith("the view is about") for r in result.reasons), result.reasons


@pytest.mark.skipif(not REAL_PHOTOS, reason="../shared/real-photos not found (set TOEANGLE_SHARED_DIR)")
@pytest.mark.parametrize("path", MEDIAL, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_medial_real_photos_are_measured_on_the_foot_or_refused(measurer, path):
    result = measurer.measure_photo(path.read_bytes(), MeasureOptions()).result
    if result.status != "ok":
        assert result.reasons
        return
    assert result.measurement.uncertainty_deg is not None
    mask = _foot_mask(path)
    if mask is None:
        pytest.skip("no foot mask or outline for this photo (its overlay was checked by eye)")
    near_foot = cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8))
    for name, p in result.landmarks.present().items():
        assert near_foot[int(round(p.y)), int(round(p.x))], f"{name} is off the foot"



@pytest.fixture(scope="module")
def full_body_photo(tmp_path_factory) -> bytes:
    """A street photo of people standing (ultralytics' bus.jpg, AGPL: fetched from PyPI, never committed)."""
    import subprocess
    import sys
    import zipfile

    folder = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder),
                           "ultralytics==8.4.190"], capture_output=True, timeout=120)
    wheels = list(folder.glob("ultralytics-*.whl"))
    if done.returncode or not wheels:
        pytest.skip("could not fetch a full-body test photo from PyPI")
    with zipfile.ZipFile(wheels[0]) as wheel:
        return wheel.read("ultralytics/assets/bus.jpg")


def test_a_full_body_photo_goes_through_mediapipe_first(measurer, full_body_photo):
    result = measurer.measure_photo(full_body_photo, MeasureOptions()).result
    assert result.detector.startswith("mediapipe+keypoint")
    # Shod feet 50 px long in a street photo: the gate must not invent an angle.
    assert result.status == "unmeasurable" and result.reasons
