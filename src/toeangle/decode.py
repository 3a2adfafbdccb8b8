"""Photo bytes -> an upright RGB array, plus how it maps back to the original pixels.

Pillow does the decoding (with only the accepted formats enabled), EXIF orientation is
applied so phone photos come out upright, and large JPEGs are decoded at reduced size
through DCT scaling, which is several times faster than decoding in full and resizing.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from .errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError
from .schema import ImageInfo

register_heif_opener()
Image.init()  # register every plugin now, so the format allow-list below can name them

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
"""Pillow's JPEG opener also yields MPO, its name for phone JPEGs with extra frames."""

DRAFT_SLACK = 0.8
"""A reduced JPEG decode may come out this much under max_side (longest side), never over it."""

_TRANSPOSED = {5, 6, 7, 8}
"""EXIF orientations that swap width and height."""


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB picture, possibly reduced, and the original photo's upright size."""

    rgb: np.ndarray
    original_width: int
    original_height: int
    format: str

    @property
    def scale(self) -> tuple[float, float]:
        """Original pixels per decoded pixel, along x and y."""
        h, w = self.rgb.shape[:2]
        return self.original_width / w, self.original_height / h

    @property
    def info(self) -> ImageInfo:
        return ImageInfo(width=self.original_width, height=self.original_height, format=self.format)


def decode_image(data: bytes, max_side: int = 2048, max_pixels: int = 40_000_000) -> DecodedImage:
    """Decode JPEG, PNG, WebP or HEIC bytes.

    Raises UnsupportedImageError (not an accepted image), ImageTooLargeError (more than
    ``max_pixels``, checked from the header) or CorruptImageError (broken or truncated).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"image has too many pixels: {exc}") from None
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            f"not a JPEG, PNG, WebP or HEIC image (read {len(data)} bytes)") from None
    except Exception as exc:  # Pillow raises many types for mangled headers
        raise CorruptImageError(f"broken image header: {exc}") from None

    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}")
        fmt = "HEIF" if image.format == "HEIF" else ("JPEG" if image.format == "MPO" else image.format)
        try:  # a PNG without an eXIf chunk before its pixels loads them to look for one after
            orientation = image.getexif().get(0x0112, 1)
        except Exception as exc:
            raise CorruptImageError(f"could not read the {fmt} image: {exc}") from None
        if max(width, height) > max_side and image.format in ("JPEG", "MPO"):
            # DCT scaling halves the size per step; accept a step that lands a little under
            # max_side, so a 4032 px phone photo decodes at 2016 (1/2) instead of in full.
            factor = max_side * DRAFT_SLACK / max(width, height)
            image.draft("RGB", (math.ceil(width * factor), math.ceil(height * factor)))
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = np.asarray(upright.convert("RGB"))
        except Exception as exc:
            raise CorruptImageError(f"could not decode the {fmt} image: {exc}") from None

    if orientation in _TRANSPOSED:
        width, height = height, width
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        factor = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return DecodedImage(rgb=np.ascontiguousarray(rgb), original_width=width, original_height=height, format=fmt)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB array; written from pixels alone, so no metadata (EXIF, GPS) can leak."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
