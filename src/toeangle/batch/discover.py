"""Paths and globs -> the photos to score, chosen by their bytes, not their names.

Folders are walked recursively in sorted order; globs are expanded (``**`` works); a file
is a photo when its first bytes say it is an image (JPEG, PNG, WebP, HEIC/AVIF, and also
GIF, BMP and TIFF, which then get an "unsupported format" row instead of being skipped).
A file whose bytes are no image is still scored (as an error row) when it was named on
the command line or matched by a glob, or when its name says it is a photo (``.jpg``,
``.png``, ...: a broken photo must show up, not vanish); anything else found in a folder
(notes, spreadsheets, ``.DS_Store``) is skipped and only counted.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".heic", ".heif", ".hif", ".avif",
                            ".gif", ".bmp", ".tif", ".tiff", ".dng"})
"""Names that promise a photo: such a file is scored even when its bytes are broken."""

_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")
SNIFF_BYTES = 16


def sniff(head: bytes) -> str | None:
    """The image format the first bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def resume_key(path: str, size: int, mtime_ns: int) -> tuple[str, int, int]:
    """What --resume compares: the absolute path (so 'photos/a.jpg' and '/data/photos/a.jpg'
    from the same folder match), the size and the modification time."""
    return (os.path.abspath(path), size, mtime_ns)


@dataclass(frozen=True)
class Photo:
    """One file to score: the path as it will appear in the results, and what --resume compares."""

    path: str
    size: int
    mtime_ns: int
    problem: str | None = None
    """Set when the file could not even be looked at (permissions, vanished): it becomes an error row."""
    read_from: str | None = None
    """Where a worker reads the file when that differs from ``path`` (an absolute path for cluster workers)."""

    @property
    def key(self) -> tuple[str, int, int]:
        return resume_key(self.path, self.size, self.mtime_ns)


@dataclass
class Discovery:
    """Counts of what the walk saw besides the photos."""

    skipped: int = 0
    missing: list[str] = field(default_factory=list)


def is_glob(pattern: str) -> bool:
    return glob.has_magic(pattern)


def input_root(inputs: Iterable[str]) -> str:
    """The deepest folder holding every input (a glob counts from its first wildcard's folder)."""
    folders = []
    for item in inputs:
        if not os.path.isdir(item) and is_glob(item):
            parts = []
            for part in item.replace("\\", "/").split("/"):
                if is_glob(part):
                    break
                parts.append(part)
            item = "/".join(parts) or "."
        folders.append(os.path.abspath(item if os.path.isdir(item) else os.path.dirname(item) or "."))
    try:
        return os.path.commonpath(folders) if folders else os.getcwd()
    except ValueError:  # different drives
        return os.path.abspath(os.sep)


def _walk(folder: str) -> Iterator[str]:
    """Files under ``folder``, recursively, sorted by name at every level (a stable order)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    subdirs = []
    for entry in entries:
        try:
            if entry.is_dir():
                subdirs.append(entry.path)
            elif entry.is_file():
                yield entry.path
        except OSError:
            continue
    for sub in subdirs:
        yield from _walk(sub)


def _look(path: str, named: bool, found: Discovery) -> Photo | None:
    try:
        stat = os.stat(path)
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return Photo(path, 0, 0, problem=f"cannot read the file: {exc.strerror or exc}")
    if sniff(head) is None and not named and os.path.splitext(path)[1].lower() not in PHOTO_SUFFIXES:
        found.skipped += 1
        return None
    return Photo(path, stat.st_size, stat.st_mtime_ns)


def discover(inputs: Iterable[str], found: Discovery | None = None) -> Iterator[Photo]:
    """Every photo under the given folders, files and globs, once each, in input then sorted order.

    Inputs that match nothing are listed in ``found.missing`` (the CLI refuses them up front).
    """
    found = found if found is not None else Discovery()
    seen: set[str] = set()
    for item in inputs:
        if os.path.isdir(item):
            candidates = ((path, False) for path in _walk(item))
        elif os.path.lexists(item):
            candidates = iter([(item, True)])
        elif is_glob(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                found.missing.append(item)
            candidates = _expand(matches)
        else:
            found.missing.append(item)
            continue
        for path, named in candidates:
            real = os.path.realpath(path)
            if real in seen:
                continue
            photo = _look(path, named, found)
            if photo is not None:
                seen.add(real)
                yield photo


def _expand(matches: list[str]) -> Iterator[tuple[str, bool]]:
    """Glob matches: files as named, folders walked (their contents chosen by bytes)."""
    for match in matches:
        if os.path.isdir(match):
            yield from ((path, False) for path in _walk(match))
        else:
            yield match, True
