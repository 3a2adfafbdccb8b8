"""Results files: append-and-flush writers, reading back for --resume, and the final sorted rewrite.

Rows are appended as photos finish and flushed one by one, so a crash or Ctrl-C keeps
every finished row (a half-written last line, from a kill mid-write, is cut off when the
file is resumed). At the end of a complete run the file is rewritten sorted by path, one
row per path (the latest wins), through a temporary file and an atomic rename: the final
order is stable whatever the number of workers, and a crash during the rewrite leaves
the unsorted file intact.

File names are kept exactly: a name that is not UTF-8 is written as its own bytes in CSV
(surrogateescape) and as ``\\udcXX`` escapes in JSONL (which stays UTF-8); text cells of
the CSV that a spreadsheet would run as a formula start with a ``'`` (rows.defuse).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .rows import CSV_COLUMNS, Row

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FSYNC_EVERY_S = 2.0


class ResultsFileError(ValueError):
    """The results file cannot be used as asked (wrong suffix, exists without --resume, other columns)."""


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ResultsFileError(f"{path}: the results file must end in .csv or .jsonl") from None


ENCODING, ERRORS = "utf-8", "surrogateescape"
"""How results files are read and written: a file name's bytes go through unchanged."""
_QUOTE_IF = frozenset(',"\r\n')


def csv_line(cells: list[str] | tuple[str, ...]) -> str:
    """One CSV record: a cell is quoted when it holds a comma, a quote or a line break (csv.writer
    leaves a lone carriage return unquoted, and csv.reader then refuses the line)."""
    return ",".join('"' + cell.replace('"', '""') + '"' if _QUOTE_IF.intersection(cell) else cell
                    for cell in cells) + "\n"


def _records(fh: io.BufferedReader, fmt: str) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of each complete record: one line of JSONL; a CSV record may span lines
    inside quotes (a JSONL line may hold an escaped quote: it is no CSV quote).

    A last record without its newline (the process died mid-write) is not complete.
    """
    offset, start, parts, quoted = 0, 0, [], False
    for line in fh:
        if not parts:
            start = offset
        parts.append(line)
        offset += len(line)
        if fmt == "csv":
            quoted ^= line.count(b'"') % 2 == 1
        if not quoted and line.endswith(b"\n"):
            yield start, b"".join(parts)
            parts = []


def _parse(fmt: str, record: bytes, header: list[str] | None) -> Row:
    text = record.decode(ENCODING, ERRORS)
    if fmt == "jsonl":
        return Row.from_json(text)
    values = next(csv.reader(io.StringIO(text)))
    return Row.from_csv(dict(zip(header or CSV_COLUMNS, values)))


def _scan(path: Path) -> Iterator[tuple[int, bytes, Row | None]]:
    """Every complete record after the header, parsed (None when it does not parse)."""
    fmt = file_format(path)
    with open(path, "rb") as fh:
        records = _records(fh, fmt)
        header = None
        if fmt == "csv":
            first = next(records, None)
            if first is None:
                return
            header = next(csv.reader(io.StringIO(first[1].decode(ENCODING, ERRORS))))
            if tuple(header) != CSV_COLUMNS:
                raise ResultsFileError(f"{path}: its columns are not the ones this version writes")
        for offset, record in records:
            if not record.strip():
                continue
            try:
                yield offset, record, _parse(fmt, record, header)
            except (ValueError, json.JSONDecodeError, StopIteration):
                yield offset, record, None


def read_rows(path: Path) -> Iterator[Row]:
    """The rows of a results file in file order, skipping any that do not parse."""
    for _, _, row in _scan(path):
        if row is not None:
            yield row


def repair(path: Path) -> None:
    """Cut off a half-written last record, so that appending starts on a fresh line."""
    end = 0
    with open(path, "rb") as fh:
        for offset, record in _records(fh, file_format(path)):
            end = offset + len(record)
    if end != path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(end)


class RowWriter:
    """Appends rows to a CSV or JSONL file, flushing each one."""

    def __init__(self, path: Path):
        self.path = path
        self.format = file_format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._fh = open(path, "a", encoding=ENCODING, errors=ERRORS, newline="")
        if fresh and self.format == "csv":
            self._fh.write(csv_line(CSV_COLUMNS))
            self._fh.flush()
        self._synced = time.monotonic()

    def write(self, row: Row) -> None:
        self._fh.write(csv_line(row.csv_record()) if self.format == "csv" else row.json_line() + "\n")
        self._fh.flush()
        if time.monotonic() - self._synced > FSYNC_EVERY_S:
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def finalize(path: Path) -> int:
    """Rewrite the file sorted by path, keeping the latest row of each photo; returns the row count.

    A photo is its absolute path (resolved from the current folder), so one named
    'photos/a.jpg' in one run and '/data/photos/a.jpg' in another keeps one row.

    Holds only (path, offset, length) per row in memory, not the rows.
    """
    latest: dict[str, tuple[int, int]] = {}
    header = b""
    fmt = file_format(path)
    with open(path, "rb") as fh:
        if fmt == "csv":
            first = next(_records(fh, fmt), None)
            header = first[1] if first else b""
    for offset, record, row in _scan(path):
        if row is not None:
            latest[os.path.abspath(row.path)] = (offset, len(record))  # one photo, however it was named
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            out.write(header)
            for key in sorted(latest):
                offset, length = latest[key]
                src.seek(offset)
                out.write(src.read(length))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(latest)
