"""Skin markers drawn onto real photos: found, ordered, and measured to sub-degree accuracy."""

import cv2
import numpy as np
import pytest

from conftest import draw_stickers, jpeg_bytes, load_rgb, sticker_geometry
from toeangle.decode import decode_image
from toeangle.detectors.markers import MarkerDetector
from toeangle.geometry import dorsiflexion_deg
from toeangle.pipeline import Measurer
from toeangle.settings import Settings

DETECTOR = MarkerDetector()


def true_angle(points):
    return float(dorsiflexion_deg(points["heel"], points["first_metatarsal"], points["first_mtp"],
                                  points["hallux_ip"]))


@pytest.mark.parametrize("case", range(24))
def test_sub_degree_agreement_on_real_backgrounds(case, real_photos):
    """Phone-like 960x1280 photos, 10 mm stickers (radius 8-20 px), JPEG quality 80-95."""
    rng = np.random.default_rng(case)
    rgb = cv2.resize(load_rgb(real_photos[case % len(real_photos)]), (960, 1280), interpolation=cv2.INTER_CUBIC)
    angle = rng.uniform(-15, 95)
    points = sticker_geometry(angle, rng, rgb.shape[1], rgb.shape[0])
    data = jpeg_bytes(draw_stickers(rgb, points, radius=rng.uniform(8, 20)), quality=int(rng.integers(80, 96)))

    detection = DETECTOR.detect(decode_image(data))

    assert detection.quality.status == "ok", detection.quality.reasons
    found = detection.landmarks.present()
    assert set(found) == {"heel", "first_metatarsal", "first_mtp", "hallux_ip"}
    for name, p in found.items():
        assert np.hypot(p.x - points[name][0], p.y - points[name][1]) < 0.5, name
    measured = float(dorsiflexion_deg(*(np.array(found[n].xy) for n in
                                        ("heel", "first_metatarsal", "first_mtp", "hallux_ip"))))
    assert measured == pytest.approx(true_angle(points), abs=0.5)


def test_three_stickers_without_heel_measure_the_magnitude_and_say_so(real_photos):
    rng = np.random.default_rng(3)
    rgb = load_rgb(real_photos[0])
    points = sticker_geometry(50.0, rng, rgb.shape[1], rgb.shape[0], with_heel=False)
    outcome = Measurer(Settings(detector="markers")).measure_photo(jpeg_bytes(draw_stickers(rgb, points, 7)))
    result = outcome.result
    assert result.status == "ok"
    assert result.landmarks.heel is None
    assert result.measurement.angle_deg == pytest.approx(50.0, abs=0.6)
    assert any("no heel" in note for note in result.measurement.notes)


def test_landmarks_come_back_in_original_pixels_of_a_rotated_phone_photo(real_photos):
    """A 3000x4000 upright photo stored sideways (EXIF 6), decoded at reduced size."""
    rng = np.random.default_rng(11)
    upright = cv2.resize(load_rgb(real_photos[2]), (3000, 4000))
    points = sticker_geometry(30.0, rng, 3000, 4000)
    drawn = draw_stickers(upright, points, radius=40)
    stored = np.rot90(drawn, k=1).copy()  # orientation 6 rotates it back clockwise
    measurer = Measurer(Settings(detector="markers", decode_max_side=1000))
    outcome = measurer.measure_photo(jpeg_bytes(stored, orientation=6))
    result = outcome.result
    assert max(outcome.image.rgb.shape[:2]) <= 1000
    assert (result.image.width, result.image.height) == (3000, 4000)
    for name, p in result.landmarks.present().items():
        assert np.hypot(p.x - points[name][0], p.y - points[name][1]) < 4.0, name  # 1 decoded px = 4 original
    assert result.measurement.angle_deg == pytest.approx(true_angle(points), abs=0.5)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_too_few_stickers_is_unmeasurable_with_the_count(count, real_photos):
    rng = np.random.default_rng(5)
    rgb = load_rgb(real_photos[3])
    points = dict(list(sticker_geometry(40, rng, rgb.shape[1], rgb.shape[0]).items())[:count])
    detection = DETECTOR.detect(decode_image(jpeg_bytes(draw_stickers(rgb, points, 7))))
    assert detection.quality.status == "unmeasurable"
    assert f"found {count} green" in detection.quality.reasons[0]


def test_green_clutter_of_other_sizes_and_shapes_is_ignored(real_photos):
    rng = np.random.default_rng(9)
    rgb = load_rgb(real_photos[4])
    points = sticker_geometry(45, rng, rgb.shape[1], rgb.shape[0])
    cluttered = draw_stickers(rgb, points, 7)
    cv2.rectangle(cluttered, (5, 5), (60, 12), (40, 200, 40), cv2.FILLED)  # a green stripe
    cv2.circle(cluttered, (20, rgb.shape[0] - 30), 1, (40, 200, 40), cv2.FILLED)  # a speck
    detection = DETECTOR.detect(decode_image(jpeg_bytes(cluttered)))
    assert detection.quality.status == "ok"
    assert detection.landmarks.first_mtp.x == pytest.approx(points["first_mtp"][0], abs=0.5)
