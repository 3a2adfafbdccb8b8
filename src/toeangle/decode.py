"""Photo bytes -> an upright RGB array, plus how it maps back to the original pixels.

Pillow does the decoding (with only the accepted formats enabled), EXIF orientation is
applied so phone photos come out upright, and large JPEGs are decoded at reduced size
through DCT scaling, which is several times faster than decoding in full and resizing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

from .errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError
from .schema import ImageInfo

register_heif_opener()
Image.init()  # register every plugin now, so the format allow-list below can name them
Image.MAX_IMAGE_PIXELS = None
"""Pillow's own bomb check (a fixed 89/179 MP) is off: decode_image checks the configured max_pixels
from the header, before any pixel is decoded, and says that limit."""

HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")
"""ftyp brands of HEIC/AVIF photos: ISO media files, like MP4 clips, told apart by this."""

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
"""Pillow's JPEG opener also yields MPO, its name for phone JPEGs with extra frames."""

DRAFT_SLACK = 0.8
"""A reduced JPEG decode may come out this much under max_side (longest side), never over it."""

_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
"""EXIF orientation -> the turn that makes the picture upright (as ImageOps.exif_transpose)."""
_TRANSPOSED = {5, 6, 7, 8}
"""EXIF orientations that swap width and height."""

MIN_JPEG_BITS_PER_BLOCK = 1
"""Huffman-coded JPEG spends at least a bit on each 8x8 block's DC term: a file with fewer bits
than the blocks its header claims cannot hold those pixels (libjpeg would fill them in gray)."""


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
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
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
        if fmt == "JPEG" and len(data) * 8 < MIN_JPEG_BITS_PER_BLOCK * math.ceil(width / 8) * math.ceil(height / 8):
            raise CorruptImageError(f"the JPEG header claims {width}x{height} pixels, more than its "
                                    f"{len(data):,} bytes can hold")
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
            # Shrink in the image's own mode before any copy: a 40 MP 1-bit or 16-bit RGBA PNG turned
            # into full-size RGB (and turned upright) first took 450-680 MB.
            upright = _reduced(image, max_side)
            if orientation in _TRANSPOSE:
                upright = upright.transpose(_TRANSPOSE[orientation])
            rgb = np.asarray(upright if upright.mode == "RGB" else upright.convert("RGB"))  # convert() would copy an RGB image
            del upright
        except Exception as exc:
            raise CorruptImageError(f"could not decode the {fmt} image: {exc}") from None

    if orientation in _TRANSPOSED:
        width, height = height, width
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        factor = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return DecodedImage(rgb=np.ascontiguousarray(rgb), original_width=width, original_height=height, format=fmt)


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """The image shrunk by a whole factor that keeps its longest side at least ``max_side``
    (the exact size is reached afterwards with area interpolation)."""
    factor = max(image.size) // max_side
    if factor < 2:
        return image
    if image.mode in ("1", "P"):  # no averaging of bits or palette indices
        return image.resize((image.width // factor, image.height // factor), Image.Resampling.NEAREST)
    if image.mode in ("RGBA", "LA"):  # reduce() would first copy it premultiplied; the alpha is dropped anyway
        return Image.merge(image.mode[:-1], [image.getchannel(band).reduce(factor) for band in image.mode[:-1]])
    try:
        return image.reduce(factor)
    except ValueError:  # a mode reduce() does not know (16-bit grey)
        return image.resize((image.width // factor, image.height // factor), Image.Resampling.NEAREST)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB array; written from pixels alone, so no metadata (EXIF, GPS) can leak."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
