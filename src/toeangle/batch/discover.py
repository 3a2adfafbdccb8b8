"""Paths and globs -> the photos (and clips) to score, chosen by their bytes, not their names.

Folders are walked recursively in sorted order; globs are expanded (``**`` works); a file
is a photo when its first bytes say it is an image (JPEG, PNG, WebP, HEIC/AVIF, and also
GIF, BMP and TIFF, which then get an "unsupported format" row instead of being skipped), and a
clip when they name an MP4/MOV, WebM or AVI container (scored as a clip, one row).
A file whose bytes are no image is still scored (as an error row) when it was named on
the command line or matched by a glob, or when its name says it is a photo (``.jpg``,
``.png``, ...: a broken photo must show up, not vanish); anything else found in a folder
(notes, spreadsheets, ``.DS_Store``) is skipped and only counted.

Only regular files are opened: a FIFO, a device or a socket gets an error row unopened, and
so does a file larger than the configured limit (TOEANGLE_BATCH_MAX_FILE_BYTES).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..decode import HEIF_BRANDS
from ..settings import get_settings
from ..video.clip import container_name

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".heic", ".heif", ".hif", ".avif",
                            ".gif", ".bmp", ".tif", ".tiff", ".dng"})
"""Names that promise a photo: such a file is scored even when its bytes are broken."""
CLIP_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})
"""Names that promise a clip (scored as one: one row per clip)."""

SNIFF_BYTES = 16
_NON_REGULAR = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def is_clip(head: bytes) -> bool:
    """The first bytes announce a clip (MP4/MOV, WebM, AVI)."""
    return container_name(head) is not None


def sniff(head: bytes) -> str | None:
    """The image format the first bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return "HEIF"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def printable(path: str) -> str:
    """A path for people: a name that is not UTF-8 (os.fsdecode's surrogates) shows U+FFFD, not a crash."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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


class FileRefused(Exception):
    """A file that is not read, or cannot be: the message is its row's error."""


def _size(size: int) -> str:
    return next((f"{size / unit:.1f} {name}" for unit, name in ((2**30, "GB"), (2**20, "MB"), (2**10, "KB"))
                 if size >= unit), f"{size} bytes")


def refusal(info: os.stat_result, max_bytes: int) -> str | None:
    """Why a file with this stat is not read (not a regular file, too large), or None."""
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _NON_REGULAR if test(info.st_mode)), "another kind")
        return f"not a regular file ({kind}): not opened"
    if info.st_size > max_bytes:
        return (f"file too large: {_size(info.st_size)}, the limit is {_size(max_bytes)} "
                "(--max-file-size, TOEANGLE_BATCH_MAX_FILE_BYTES)")
    return None


def read_file(path: str, max_bytes: int, count: int | None = None) -> bytes:
    """The first ``count`` bytes of a regular file (all of it when None), at most ``max_bytes``.

    The path is checked before it is opened (a FIFO is never opened: that would block) and the
    open file again (it could have been swapped meanwhile; the non-blocking open cannot hang),
    and reading stops past the limit, so a file that grew cannot exhaust memory either.
    Raises FileRefused with the row's error.
    """
    try:
        problem = refusal(os.stat(path), max_bytes)
        if problem is None:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
            with os.fdopen(fd, "rb") as fh:
                problem = refusal(os.fstat(fd), max_bytes)
                data = b"" if problem else fh.read(max_bytes + 1 if count is None else min(count, max_bytes + 1))
    except OSError as exc:
        raise FileRefused(f"cannot read the file: {exc.strerror or exc}") from None
    except MemoryError:
        raise FileRefused("out of memory reading the file (lower --max-file-size, TOEANGLE_BATCH_MAX_FILE_BYTES)") from None
    if problem is None and len(data) > max_bytes:
        problem = f"file too large: it grew past the limit of {_size(max_bytes)} while being read"
    if problem:
        raise FileRefused(problem)
    return data


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


def _listing(folder: str, entered: set[tuple[int, int]]) -> list[os.DirEntry] | None:
    """The folder's entries sorted by name; None when it was entered before (same device and
    inode: a symlink loop, or one folder reached twice) or cannot be listed."""
    try:
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in entered:
            return None
        entered.add((info.st_dev, info.st_ino))
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return None


def _walk(folder: str, entered: set[tuple[int, int]], folders: bool = False) -> Iterator[str]:
    """Everything under ``folder`` but folders (with ``folders``, those too), sorted by name at every level.

    Each folder is entered once, known by its device and inode (``entered``), so symlink loops
    end at once and no path goes round one. Symlinks are followed only after the real tree is
    done: a file in the tree keeps its real path, a link adds only what lies outside it.
    FIFOs, devices and broken links are yielded too: ``_look`` turns them into rows unopened.
    """
    pending, links = [folder], []
    while pending or links:
        through_link = not pending
        current = pending.pop() if pending else links.pop(0)
        if through_link and not os.path.isdir(current):
            yield current  # a link to a file, or a broken one
            continue
        listing = _listing(current, entered)
        if listing is None:
            continue
        if through_link and folders:
            yield current
        subfolders = []
        for entry in listing:
            try:
                if entry.is_symlink():
                    links.append(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                    if folders:
                        yield entry.path
                else:
                    yield entry.path
            except OSError:
                continue
        pending.extend(reversed(subfolders))


def _name_matches(pattern: str, name: str) -> bool:
    """glob's rule for one path part: a wildcard does not match a leading dot."""
    return fnmatch.fnmatchcase(name, pattern) and (not name.startswith(".") or pattern.startswith("."))


def _parts_match(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return _parts_match(pattern[1:], parts) or (
            bool(parts) and not parts[0].startswith(".") and _parts_match(pattern, parts[1:]))
    return bool(parts) and _name_matches(pattern[0], parts[0]) and _parts_match(pattern[1:], parts[1:])


def _glob(pattern: str) -> list[str]:
    """glob.glob(pattern, recursive=True), sorted, but ``**`` walks each folder once (glob's own
    ``**`` follows symlink loops: exponential in the number of loops)."""
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return sorted(glob.glob(pattern))
    fixed = next(i for i, part in enumerate(parts) if is_glob(part))
    base = os.sep.join(parts[:fixed]) or (os.sep if pattern.startswith(os.sep) else os.curdir)
    wanted = tuple(parts[fixed:])
    if not os.path.isdir(base):
        return []
    matches = [path for path in _walk(base, set(), folders=True)
               if _parts_match(wanted, tuple(os.path.relpath(path, base).split(os.sep)))]
    if _parts_match(wanted, ()):
        matches.append(base)
    return sorted(path if parts[:fixed] else os.path.relpath(path) for path in matches)


def _look(path: str, named: bool, found: Discovery, max_bytes: int) -> Photo | None:
    promised = named or os.path.splitext(path)[1].lower() in PHOTO_SUFFIXES | CLIP_SUFFIXES
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not promised:  # a broken link found while walking
            found.skipped += 1
            return None
        return Photo(path, 0, 0, problem="cannot read the file: it does not exist (a broken link?)")
    except OSError as exc:
        return Photo(path, 0, 0, problem=f"cannot read the file: {exc.strerror or exc}")
    try:  # the size limit is for scoring: a huge file that is neither photo nor clip is skipped, not refused
        head = read_file(path, sys.maxsize, SNIFF_BYTES)
    except FileRefused as exc:
        return Photo(path, info.st_size, info.st_mtime_ns, problem=str(exc))
    if sniff(head) is None and not is_clip(head) and not promised:
        found.skipped += 1
        return None
    return Photo(path, info.st_size, info.st_mtime_ns, problem=refusal(info, max_bytes))


def discover(inputs: Iterable[str], found: Discovery | None = None,
             max_bytes: int | None = None) -> Iterator[Photo]:
    """Every photo under the given folders, files and globs, once each, in input then sorted order.

    Inputs that match nothing are listed in ``found.missing`` (the CLI refuses them up front).
    Files larger than ``max_bytes`` (default: the setting) and files that are not regular files
    become error rows.
    """
    found = found if found is not None else Discovery()
    max_bytes = get_settings().batch_max_file_bytes if max_bytes is None else max_bytes
    seen: set[str] = set()
    entered: set[tuple[int, int]] = set()  # folders, by device and inode: each is walked once
    for item in inputs:
        if os.path.isdir(item):
            candidates = ((path, False) for path in _walk(item, entered))
        elif os.path.lexists(item):
            candidates = iter([(item, True)])
        elif is_glob(item):
            matches = _glob(item)
            if not matches:
                found.missing.append(item)
            candidates = _expand(matches, entered)
        else:
            found.missing.append(item)
            continue
        for path, named in candidates:
            real = os.path.realpath(path)
            if real in seen:
                continue
            photo = _look(path, named, found, max_bytes)
            if photo is not None:
                seen.add(real)
                yield photo


def _expand(matches: list[str], entered: set[tuple[int, int]]) -> Iterator[tuple[str, bool]]:
    """Glob matches: files as named, folders walked (their contents chosen by bytes)."""
    for match in matches:
        if os.path.isdir(match):
            yield from ((path, False) for path in _walk(match, entered))
        else:
            yield match, True
