"""Clip bytes -> upright RGB frames with their timestamps, within limits checked before decoding.

OpenCV's FFmpeg reads the clip from memory (a clip of a body is health data: it never touches
the disk), applies the container's rotation (phones record sideways and say so in the track
header) and gives each frame its presentation time, so variable-frame-rate phone clips keep
their real timing. Containers are recognised by their bytes: MP4/MOV (H.264, HEVC, ...),
WebM/Matroska and AVI.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import cv2

from ..decode import HEIF_BRANDS, DecodedImage
from ..errors import CorruptVideoError, UnsupportedVideoError, VideoTooLargeError
from ..schema import VideoInfo

cv2.setLogLevel(0)  # silent
"""FFmpeg's complaints about a broken clip reach the user as this module's errors, not as log lines."""

MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
"""An ISO media (MP4/MOV) file starts with one of these boxes, 4 bytes in."""
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
"""WebM and Matroska."""


@dataclass(frozen=True)
class ClipLimits:
    """What a clip may cost: its length, and the pixels decoding it takes (frames x width x height)."""

    max_seconds: float = 30.0
    max_frames: int = 1800
    max_decoded_pixels: float = 1800 * 1920 * 1080.0
    max_side: int = 1920
    """Frames larger than this (4K) are reduced to it; the model's crops need no more."""


@dataclass(frozen=True)
class Frame:
    index: int
    time_s: float
    image: DecodedImage


def container_name(head: bytes) -> str | None:
    """The clip container the first 12 bytes name, or None (also for HEIC photos, ISO media files too)."""
    if len(head) >= 12 and head[4:8] in MP4_BOXES:
        return None if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS else "MP4/MOV"
    if head[:4] == EBML_MAGIC:
        return "WebM/Matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    return None


def container_of(data: bytes) -> str:
    """The container named by the first bytes, or UnsupportedVideoError."""
    name = container_name(data[:12])
    if name is None:
        raise UnsupportedVideoError(f"not an MP4, MOV, WebM or AVI clip (read {len(data):,} bytes)")
    return name


class Clip:
    """An opened clip: its header (``info``) checked against the limits, then its frames, once."""

    def __init__(self, data: bytes, limits: ClipLimits = ClipLimits()):
        self.limits = limits
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        container = container_of(data)
        self._stream = io.BytesIO(data)  # OpenCV reads it as it decodes, and holds no reference of its own
        self._capture = cv2.VideoCapture(self._stream, cv2.CAP_FFMPEG, [])
        if not self._capture.isOpened():
            raise CorruptVideoError(f"the {container} clip could not be opened: it is broken or truncated, "
                                    "or holds no video track (audio only)")
        self._capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # the default; said here because it matters
        get = self._capture.get
        width, height = int(get(cv2.CAP_PROP_FRAME_WIDTH)), int(get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise UnsupportedVideoError(f"the {container} file has no video track (audio only?)")
        rotation = int(round(get(cv2.CAP_PROP_ORIENTATION_META))) % 360  # width and height are already upright
        fps = float(get(cv2.CAP_PROP_FPS))
        frames = int(get(cv2.CAP_PROP_FRAME_COUNT))
        fourcc = int(get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ")
        duration = frames / fps if fps > 0 and frames > 0 else None
        self.info = VideoInfo(width=width, height=height, fps=round(fps, 3) if fps > 0 else None,
                              frames=max(frames, 0) or None, duration_s=None if duration is None else round(duration, 3),
                              rotation_deg=rotation, container=container, codec=fourcc or None)
        self._check(frames, duration, width, height)

    def _check(self, frames: int, duration: float | None, width: int, height: int, decoding: bool = False) -> None:
        limits = self.limits
        pixels = frames * width * height
        when = "after decoding" if decoding else "says its header:"
        if duration is not None and duration > limits.max_seconds:
            raise VideoTooLargeError(f"the clip is {duration:,.1f} s long ({when}); the limit is "
                                     f"{limits.max_seconds:g} s: trim it to the movement")
        if frames > limits.max_frames:
            raise VideoTooLargeError(f"the clip has {frames:,} frames ({when}); the limit is {limits.max_frames:,}")
        if pixels > limits.max_decoded_pixels:
            raise VideoTooLargeError(
                f"the clip is {frames:,} frames of {width}x{height} ({when}); at most "
                f"{limits.max_decoded_pixels / (width * height):,.0f} frames of that size can be decoded "
                f"({limits.max_decoded_pixels / 1e9:g} gigapixels): trim it or record at a lower resolution or rate")

    def frames(self, ahead: int = 0) -> Iterator[Frame]:
        """Every frame, upright and reduced to ``max_side``; the limits are checked again as frames
        arrive, since a header may lie. A clip that stops decoding part-way ends there.

        ``ahead`` > 0 decodes up to that many frames ahead in a thread while the caller works on the
        last one: FFmpeg and the model both release the GIL, so two cores work at once.
        """
        if ahead <= 0:
            yield from self._decoded()
            return
        self._ahead = queue.Queue(maxsize=ahead)
        self._thread = threading.Thread(target=self._decode_ahead, name="clip-decoder", daemon=True)
        self._thread.start()
        while True:
            kind, value = self._ahead.get()
            if kind == "frame":
                yield value
            elif kind == "error":
                raise value
            else:
                return

    def _decode_ahead(self) -> None:
        try:
            for frame in self._decoded():
                if not self._put(("frame", frame)):
                    return
            self._put(("end", None))
        except Exception as exc:
            self._put(("error", exc))

    def _put(self, item) -> bool:
        """Hand a frame over, waiting while the queue is full; False once the clip is being closed."""
        while not self._stopping.is_set():
            try:
                self._ahead.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _decoded(self) -> Iterator[Frame]:
        capture, index = self._capture, 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            time_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3
            h, w = bgr.shape[:2]
            self._check(index + 1, time_s, w, h, decoding=True)
            factor = self.limits.max_side / max(h, w)
            if factor < 1:
                bgr = cv2.resize(bgr, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield Frame(index, time_s, DecodedImage(rgb=rgb, original_width=w, original_height=h, format="video"))
            index += 1
        if index == 0:
            raise CorruptVideoError(f"no frame of the {self.info.container} clip could be decoded: it is broken or "
                                    "truncated")

    def close(self) -> None:
        """Stop the decoding thread (if any) before the decoder it uses is freed."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._capture.release()

    def __enter__(self) -> Clip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
