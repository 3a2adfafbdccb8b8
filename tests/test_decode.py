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


# ---- issue 20: headers that lie, and memory per photo ------------------------------------

def _png_of_zeros(width: int, height: int, bit_depth: int, color_type: int, bytes_per_row: int) -> bytes:
    """A PNG of one colour written row by row (never a full-size array), as an attacker would."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    compressor, row = zlib.compressobj(9), bytes(1 + bytes_per_row)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_jpeg_whose_header_claims_more_pixels_than_its_data_is_corrupt():
    import struct

    small = bytearray(encoded(upright_picture(64, 64), "JPEG", quality=90))
    sof = small.find(b"\xff\xc0")
    small[sof + 5: sof + 9] = struct.pack(">HH", 6000, 6000)  # the header now claims 6000x6000
    with pytest.raises(CorruptImageError, match="6000x6000"):
        decode_image(bytes(small))


def test_the_pixel_limit_quoted_is_the_configured_one_even_past_pillows_own():
    data = _png_of_zeros(20_000, 10_000, 1, 0, 2500)  # 200 MP: past Pillow's 179 MP error
    with pytest.raises(ImageTooLargeError) as refused:
        decode_image(data, max_pixels=40_000_000)
    assert "40,000,000" in str(refused.value) and "178956970" not in str(refused.value)


MEMORY_PROBE = """
import resource, sys
from toeangle.decode import decode_image
data = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decoded = decode_image(data)
print(decoded.original_width * decoded.original_height, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("kind, bound_mb", [("1-bit", 150), ("16-bit RGBA", 300)])
def test_a_huge_png_of_a_few_kilobytes_does_not_grow_a_worker_by_hundreds_of_mb(kind, bound_mb):
    """39.6 MP (under the 40 MP limit): the 1-bit one is 4.8 KB and grew a worker by 453 MB, the 16-bit
    RGBA one by 680 MB; shrinking in the image's own mode before any copy keeps it near the decode itself."""
    import subprocess
    import sys

    width, height = 7700, 5143
    data = _png_of_zeros(width, height, 1, 0, (width + 7) // 8) if kind == "1-bit" else \
        _png_of_zeros(width, height, 16, 6, width * 8)
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE], input=data, capture_output=True, timeout=120)
    assert probe.returncode == 0, probe.stderr.decode()[-2000:]
    pixels, grown_mb = map(int, probe.stdout.split())
    assert pixels == width * height and grown_mb < bound_mb, f"{kind}: grew by {grown_mb} MB"


def test_orientation_survives_the_reduced_decode():
    data = encoded(upright_picture(3600, 2400).transpose(STORE_FOR_ORIENTATION[6]), "PNG", 6)
    decoded = decode_image(data, max_side=1200)
    assert decoded.rgb.shape[:2] == (800, 1200) and (decoded.original_width, decoded.original_height) == (3600, 2400)
    assert tuple(decoded.rgb[20, 20]) == (220, 30, 30) and tuple(decoded.rgb[-20, -20]) == (30, 30, 220)
