"""The errors toeangle raises on purpose: each edge (CLI, API, batch) maps them once."""


class ToeangleError(Exception):
    """Base of every expected failure; anything else is a bug."""


class ImageDecodeError(ToeangleError):
    """The bytes could not become a picture."""


class UnsupportedImageError(ImageDecodeError):
    """Not an image in an accepted format, judged by its bytes (not its name or declared type)."""


class CorruptImageError(ImageDecodeError):
    """An accepted format, but broken or truncated."""


class ImageTooLargeError(ImageDecodeError):
    """Too many pixels to decode safely (refused from the header, before decoding)."""


class LandmarkError(ToeangleError):
    """Landmarks given by hand are missing, outside the photo or geometrically unusable."""


class VideoDecodeError(ToeangleError):
    """The bytes could not become a clip's frames."""


class UnsupportedVideoError(VideoDecodeError):
    """Not a clip in an accepted container, or one without a video track (audio only), judged by its bytes."""


class CorruptVideoError(VideoDecodeError):
    """An accepted container, but broken or truncated before its first frame."""


class VideoTooLargeError(VideoDecodeError):
    """Longer, or more pixels to decode, than the configured limits (refused before or while decoding)."""


class OptionsError(ToeangleError):
    """Options that cannot apply to the input (protocol auto for a clip, whose movement is named, not read)."""
