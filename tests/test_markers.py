"""Skin markers: found on a real foot to sub-degree accuracy, and never found where there are no stickers."""

import json

import cv2
import numpy as np
import pytest
from conftest import (
    GREEN_RENDERS,
    REPO,
    SHARED,
    STICKER_PLACES,
    jpeg_bytes,
    load_rgb,
    retone_skin,
    stickers_at_angle,
    stickers_at_landmarks,
    stickers_on_a_real_foot,
)

from toeangle.decode import decode_image
from toeangle.detectors import build_detector
from toeangle.geometry import dorsiflexion_deg
from toeangle.pipeline import Measurer
from toeangle.settings import Settings

FOUR = ("heel", "first_metatarsal", "first_mtp", "hallux_ip")
REAL_FEET_CASES = 40
MIN_REAL_FEET_FOUND = 0.85
"""bench/markers.py: 93% of 200 such photos found; the misses are feet stage 1 does not find
(seen from above, or on their side), which the marker path now needs."""


@pytest.fixture(scope="module")
def detector():
    return build_detector(Settings(detector="markers"))


def _angle(points) -> float:
    return float(dorsiflexion_deg(*(np.asarray(points[n]) for n in FOUR)))


def test_stickers_on_real_feet_are_found_to_a_fraction_of_a_pixel(detector):
    """Real photos 800-1600 px, stickers where a person puts them, darker and lighter skin, shadows,
    phones held every way and mirrored, JPEG 80-95: most found, and every one found is exact."""
    found = 0
    for case in range(REAL_FEET_CASES):
        data, truth = stickers_on_a_real_foot(case)
        detection = detector.detect(decode_image(data))
        if detection.quality.status != "ok":
            assert detection.quality.reasons[0].startswith("skin markers: "), detection.quality.reasons
            continue
        points = detection.landmarks.present()
        for name, p in points.items():
            assert np.hypot(p.x - truth[name][0], p.y - truth[name][1]) < 0.6, (case, name)
        if set(points) == set(FOUR):  # else the heel sticker was not seen (e.g. not round): no sign
            assert _angle({n: p.xy for n, p in points.items()}) == pytest.approx(_angle(truth), abs=0.52)
            found += 1
    assert found >= MIN_REAL_FEET_FOUND * REAL_FEET_CASES


@pytest.mark.parametrize("tone", [pytest.param("darker", marks=pytest.mark.xfail(
    strict=True, reason="v9's stage 1 places this darker foot's big-toe joint about 0.3 foot lengths from its sticker, "
    "so the stickers are refused as off the foot (models/MODEL_CARD.md, Limits)")), "lighter"])
def test_darker_and_lighter_skin_with_a_shadowed_sticker(detector, tone):
    rgb, truth = stickers_at_angle(47.0)
    toned = retone_skin(rgb, tone)
    toned[:, : int(truth["first_mtp"][0])] //= 2  # a shadow edge through the big-toe joint's sticker
    detection = detector.detect(decode_image(jpeg_bytes(toned)))
    assert detection.quality.status == "ok", detection.quality.reasons
    assert _angle({n: p.xy for n, p in detection.landmarks.present().items()}) == pytest.approx(47.0, abs=0.52)


def test_the_uncertainty_holds_sticker_placement_never_zero():
    rgb, _ = stickers_at_angle(38.0)
    measurement = Measurer(Settings(detector="markers")).measure_photo(jpeg_bytes(rgb)).result.measurement
    assert measurement.angle_deg == pytest.approx(38.0, abs=0.52)
    assert 3.0 < measurement.uncertainty_deg < 10.0  # about 1 mm of placement at each joint


def test_three_stickers_without_heel_measure_the_magnitude_and_say_so():
    rgb, _ = stickers_at_angle(50.0, with_heel=False)
    result = Measurer(Settings(detector="markers")).measure_photo(jpeg_bytes(rgb)).result
    assert result.status == "ok"
    assert result.landmarks.heel is None
    assert result.measurement.angle_deg == pytest.approx(50.0, abs=0.6)
    assert any("no heel" in note for note in result.measurement.notes)


def test_landmarks_come_back_in_original_pixels_of_a_rotated_phone_photo():
    """A 4000x3000 upright photo stored sideways (EXIF 6), decoded at reduced size."""
    upright, points = stickers_at_angle(30.0, long_side=4000)
    stored = np.rot90(upright, k=1).copy()  # orientation 6 rotates it back clockwise
    outcome = Measurer(Settings(detector="markers", decode_max_side=1000)).measure_photo(
        jpeg_bytes(stored, orientation=6))
    result = outcome.result
    assert max(outcome.image.rgb.shape[:2]) <= 1000
    assert (result.image.width, result.image.height) == (upright.shape[1], upright.shape[0])
    for name, p in result.landmarks.present().items():
        assert np.hypot(p.x - points[name][0], p.y - points[name][1]) < 4.0, name  # 1 decoded px = 4 original
    assert result.measurement.angle_deg == pytest.approx(30.0, abs=0.5)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_too_few_stickers_is_unmeasurable_with_the_count(detector, count):
    rgb = load_rgb(SHARED / "real-photos" / "solol" / "l.jpg").copy()
    places = dict(list(STICKER_PLACES["solol/l.jpg"].items())[:count])
    for x, y in places.values():
        cv2.circle(rgb, (x, y), 40, (40, 200, 40), cv2.FILLED, cv2.LINE_AA)
    detection = detector.detect(decode_image(jpeg_bytes(rgb)))
    assert detection.quality.status == "unmeasurable"
    assert f"found {count} green" in detection.quality.reasons[0]
    assert detection.quality.reason_codes == ("markers_not_found",)


def test_green_clutter_of_other_sizes_and_shapes_is_ignored(detector):
    rgb, truth = stickers_at_angle(45.0)
    cv2.rectangle(rgb, (5, 5), (60, 12), (40, 200, 40), cv2.FILLED)  # a green stripe
    cv2.circle(rgb, (20, rgb.shape[0] - 30), 1, (40, 200, 40), cv2.FILLED)  # a speck
    cv2.rectangle(rgb, (600, 600), (640, 640), (40, 200, 40), cv2.FILLED)  # a green square tile
    detection = detector.detect(decode_image(jpeg_bytes(rgb)))
    assert detection.quality.status == "ok", detection.quality.reasons
    assert detection.landmarks.first_mtp.x == pytest.approx(truth["first_mtp"][0], abs=0.5)


def _sticker_free_photos():
    """Every real photo and render without stickers the project has (tests/fixtures holds their licences)."""
    folders = [SHARED / "real-photos", REPO / "samples", GREEN_RENDERS, REPO / "tests" / "fixtures" / "pose2sim"]
    return sorted(p for folder in folders for pattern in ("*.jpg", "*.png") for p in folder.rglob(pattern)
                  if "mask" not in p.name)


def test_no_stickers_are_found_in_any_photo_without_stickers(detector):
    photos = _sticker_free_photos()
    assert len(photos) >= 15 + 13 + 8 + 1
    measured = [p.name for p in photos if detector.detect(decode_image(p.read_bytes())).quality.status == "ok"]
    assert measured == []


def _refusal(detector, rgb) -> str:
    detection = detector.detect(decode_image(jpeg_bytes(rgb)))
    assert detection.quality.status == "unmeasurable"
    return detection.quality.reasons[0]


def test_stickers_off_the_foot_are_refused(detector):
    """The same four stickers, moved from the foot onto the paper and rug below it (warm white paper
    reads as pale skin: the refusal comes from where stage 1 finds the foot)."""
    rgb = load_rgb(SHARED / "real-photos" / "solol" / "l.jpg").copy()
    for x, y in STICKER_PLACES["solol/l.jpg"].values():
        cv2.circle(rgb, (x, y + 650), 40, (40, 200, 40), cv2.FILLED, cv2.LINE_AA)
    assert _refusal(detector, rgb).startswith("skin markers: ")


def test_a_green_circle_pattern_beside_the_foot_is_refused(detector):
    """Four sticker-like dots in the proportions of a foot on the wooden floor beside a real foot."""
    rgb = load_rgb(SHARED / "real-photos" / "solol" / "ad.jpg").copy()
    for x, y in STICKER_PLACES["solol/ad.jpg"].values():
        cv2.circle(rgb, (x, y + 700), 30, (40, 200, 40), cv2.FILLED, cv2.LINE_AA)
    assert _refusal(detector, rgb).startswith("skin markers: ")


def test_green_paper_under_the_foot_and_a_green_sock_are_not_stickers(detector):
    rgb = load_rgb(SHARED / "real-photos" / "solol" / "l.jpg").copy()
    paper = (np.abs(rgb.astype(int) - 235).max(-1) < 25)  # the white paper the foot stands on
    green = rgb.copy()
    green[paper] = (60, 190, 70)
    assert "found 0 green" in _refusal(detector, green)
    sock = rgb.copy()
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    sock[(hsv[..., 0] <= 25) & (hsv[..., 1] > 40)] = (40, 160, 60)
    for x, y in STICKER_PLACES["solol/l.jpg"].values():  # even with stickers on it
        cv2.circle(sock, (x, y), 40, (40, 200, 40), cv2.FILLED, cv2.LINE_AA)
    assert _refusal(detector, sock).startswith("skin markers: found")


def test_auto_falls_back_to_the_model_with_its_reasons_when_green_is_not_stickers():
    """The gym frame: the marker path refuses, the keypoint model answers (here: a refusal of its own)."""
    data = (REPO / "tests" / "fixtures" / "pose2sim" / "cam01_frame78.jpg").read_bytes()
    detection = build_detector(Settings(detector="auto")).detect(decode_image(data))
    assert detection.detector != "markers"
    assert not any(reason.startswith("skin markers") for reason in detection.quality.reasons)


def test_green_renders_with_stickers_at_their_landmarks_are_measured_or_refused_never_misread(detector):
    """Sticker-sized dots behind the foot: the real stickers are found exactly, or the photo is refused."""
    truth = json.loads((GREEN_RENDERS / "ground_truth.json").read_text())
    rng = np.random.default_rng(2)
    for name, t in truth.items():
        rgb, points = stickers_at_landmarks(load_rgb(GREEN_RENDERS / name), t["landmarks"], rng)
        detection = detector.detect(decode_image(jpeg_bytes(rgb)))
        for n, p in detection.landmarks.present().items():
            assert np.hypot(p.x - points[n][0], p.y - points[n][1]) < 1.0, (name, n)
