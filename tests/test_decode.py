"""Decoding: every accepted format, EXIF orientation, reduced decoding, and refusals."""

import io

import numpy as np
import pytest
from PIL import Image

from toeangle.decode import decode_image, encode_png
from toeangle.errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError

# How to store pixels so that applying EXIF orientation N gives back the upright picture.
STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright_picture(width=120, height=80) -> Image.Image:
    """Asymmetric: a red block top-left and a blue block bottom-right, so any wrong turn shows."""
    pixels = np.full((height, width, 3), 200, np.uint8)
    pixels[: height // 4, : width // 4] = (220, 30, 30)
    pixels[-height // 4:, -width // 3:] = (30, 30, 220)
    return Image.fromarray(pixels)


def encoded(image: Image.Image, fmt: str, orientation: int = 1, **kw) -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    image.save(buf, format=fmt, exif=exif.tobytes(), **kw)
    return buf.getvalue()


def assert_upright(rgb: np.ndarray, width=120, height=80):
    assert rgb.shape == (height, width, 3)
    top_left = rgb[: height // 8, : width // 8].reshape(-1, 3).mean(0)
    bottom_right = rgb[-height // 8:, -width // 8:].reshape(-1, 3).mean(0)
    assert top_left[0] > 150 and top_left[2] < 100, top_left
    assert bottom_right[2] > 150 and bottom_right[0] < 100, bottom_right


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_every_accepted_format_decodes(fmt):
    decoded = decode_image(encoded(upright_picture(), fmt, quality=95))
    assert_upright(decoded.rgb)
    assert decoded.info.format == fmt
    assert (decoded.original_width, decoded.original_height) == (120, 80)
    assert decoded.scale == (1.0, 1.0)


@pytest.mark.parametrize("orientation", sorted(STORE_FOR_ORIENTATION))
def test_exif_orientation_is_applied(orientation):
    method = STORE_FOR_ORIENTATION[orientation]
    stored = upright_picture() if method is None else upright_picture().transpose(method)
    decoded = decode_image(encoded(stored, "JPEG", orientation, quality=95))
    assert_upright(decoded.rgb)
    assert (decoded.original_width, decoded.original_height) == (120, 80)


def test_heic_orientation_is_applied():
    stored = upright_picture().transpose(Image.Transpose.ROTATE_90)
    decoded = decode_image(encoded(stored, "HEIF", 6, quality=95))
    assert_upright(decoded.rgb)


def test_large_jpeg_decodes_reduced_but_reports_the_original_size():
    big = upright_picture(4000, 3000)
    decoded = decode_image(encoded(big, "JPEG", 6, quality=90), max_side=1200)
    # stored 4000 wide; orientation 6 turns it to 3000x4000 upright
    assert (decoded.original_width, decoded.original_height) == (3000, 4000)
    assert max(decoded.rgb.shape[:2]) <= 1200
    sx, sy = decoded.scale
    assert sx == pytest.approx(sy, rel=0.01) and sx >= 3.3


def test_large_png_is_resized_to_the_limit():
    decoded = decode_image(encoded(upright_picture(2400, 1600), "PNG"), max_side=1200)
    assert decoded.rgb.shape[:2] == (800, 1200)
    assert decoded.scale == (2.0, 2.0)


@pytest.mark.parametrize("data", [b"", b"hello, not a picture", b"%PDF-1.7\n" + bytes(200), b"GIF89a" + bytes(100)])
def test_non_images_are_unsupported(data):
    with pytest.raises(UnsupportedImageError):
        decode_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_images_are_corrupt(fmt):
    data = encoded(upright_picture(400, 300), fmt, quality=95)
    with pytest.raises(CorruptImageError):
        decode_image(data[: len(data) // 2])


def test_truncated_png_without_exif_is_corrupt():
    """Pillow reads a PNG's pixels when asked for EXIF it has not seen yet; truncation surfaces there."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    with pytest.raises(CorruptImageError):
        decode_image(buf.getvalue()[:2000])


def test_garbled_jpeg_body_is_corrupt():
    data = bytearray(encoded(upright_picture(400, 300), "JPEG", quality=95))
    data[200:] = bytes(len(data) - 200)
    with pytest.raises((CorruptImageError, UnsupportedImageError)):
        decode_image(bytes(data))


def test_too_many_pixels_is_refused_from_the_header():
    # A 20000x20000 PNG of one colour compresses to a few hundred KB: a classic bomb.
    data = encoded(Image.new("L", (20000, 20000)), "PNG")
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(data, max_pixels=40_000_000)


def test_png_output_carries_no_exif():
    png = encode_png(np.zeros((10, 10, 3), np.uint8))
    with Image.open(io.BytesIO(png)) as image:
        assert not image.getexif()
        assert "exif" not in image.info


def test_pixel_limit_is_ours_below_pillows_own_bomb_guard():
    data = encoded(Image.new("L", (8000, 6000)), "PNG")
    with pytest.raises(ImageTooLargeError, match="48,000,000 pixels"):
        decode_image(data, max_pixels=40_000_000)


def test_phone_jpeg_decodes_by_dct_scaling_just_under_the_limit():
    """4032x3024 with the 2048 default: the 1/2 DCT step (2016) is taken, not a full decode and a resize."""
    decoded = decode_image(encoded(upright_picture(4032, 3024), "JPEG", 1, quality=90), max_side=2048)
    assert decoded.rgb.shape[:2] == (1512, 2016) and decoded.scale == (2.0, 2.0)
    decoded = decode_image(encoded(upright_picture(3000, 2000), "JPEG", 1, quality=90), max_side=2048)
    assert decoded.rgb.shape[:2] == (1365, 2048)  # 1/2 would be 1500, too far under: full decode, resized
