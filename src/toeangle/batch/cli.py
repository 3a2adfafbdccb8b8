"""``toeangle batch``: arguments -> BatchConfig -> run -> summary and exit code.

Exit codes: 0 every photo scored (measured or unmeasurable), 1 some photos failed (error
rows), 2 usage (bad arguments, results file exists without --resume/--overwrite, no
match), 130 interrupted (finished rows kept: rerun with --resume).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import get_args

from ..schema import DEFAULT_PROTOCOL, PROTOCOL_CHOICES, MeasureOptions, Protocol
from ..settings import Settings


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. a container's cpuset), not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def byte_size(text: str) -> int:
    """'5000000', '200M', '2G' -> bytes (powers of 1024)."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    number, unit = (text[:-1], units[text[-1].upper()]) if text[-1:].upper() in units else (text, 1)
    try:
        size = round(float(number) * unit)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or a number with K, M or G)") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (at least 1 byte)")
    return size


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="score many photos (and clips) into a CSV or JSONL file (see docs/batch.md)",
                       description="Score folders (recursive), globs and files of photos and clips, one row per file.",
                       epilog="exit codes: 0 every photo scored (measured or unmeasurable), 1 some photos failed, "
                              "2 usage, 130 interrupted (rerun with --resume). See docs/batch.md.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders, files or globs ('photos/**/*.jpg')")
    p.add_argument("--out", type=Path, required=True, help="results file: .csv or .jsonl")
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES, default=DEFAULT_PROTOCOL,
                   help="how the toes were bent in these photos, or auto: read from each photo's posture "
                        f"(default: {DEFAULT_PROTOCOL})")
    p.add_argument("--clip-protocol", choices=get_args(Protocol.__value__), default="heel_raise",
                   help="what the clips among them show: heel_raise (default: the peak), walking or running (push-off)")
    p.add_argument("--workers", type=int, default=usable_cores(),
                   help="worker processes (default: all cores); 1 scores in this process")
    p.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local process pool (default) or a dask.distributed cluster")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="Dask scheduler address; without it --engine dask starts a local cluster of --workers")
    p.add_argument("--overlays", type=Path, metavar="DIR", help="write each photo's overlay PNG under DIR")
    p.add_argument("--report", type=Path, metavar="FILE.html", help="write a self-contained HTML report")
    p.add_argument("--report-max-photos", type=int, default=500, metavar="N",
                   help="thumbnails in the report's table (default 500; an even spread beyond)")
    p.add_argument("--subjects", type=Path, metavar="CSV",
                   help="path,subject,date per photo, for per-person charts (default: from names like alice_2026-03-01.jpg)")
    p.add_argument("--resume", action="store_true",
                   help="complete an existing results file: skip photos already scored (same path, size, mtime)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    detector = Settings.model_fields["detector"].annotation
    p.add_argument("--detector", choices=get_args(detector), help="landmark source (default: TOEANGLE_DETECTOR)")
    p.add_argument("--decode-max-side", type=int, metavar="PX",
                   help="decode photos at most this large (default: TOEANGLE_DECODE_MAX_SIDE)")
    p.add_argument("--max-file-size", type=byte_size, metavar="SIZE",
                   help="larger files get an error row, unread: bytes, or with K, M, G "
                        "(default: TOEANGLE_BATCH_MAX_FILE_BYTES, 100M)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="always show the progress bar (default: only on a terminal)")
    shown.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from .runner import BatchConfig, BatchUsageError, run_batch

    if args.workers < 1:
        print("toeangle batch: error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.resume and args.overwrite:
        print("toeangle batch: error: --resume and --overwrite exclude each other", file=sys.stderr)
        return 2
    overrides = tuple((k, v) for k, v in (("detector", args.detector), ("decode_max_side", args.decode_max_side),
                                          ("batch_max_file_bytes", args.max_file_size)) if v is not None)
    config = BatchConfig(
        inputs=tuple(args.paths), out=args.out, options=MeasureOptions(protocol=args.protocol),
        clip_options=MeasureOptions(protocol=args.clip_protocol),
        workers=args.workers, engine=args.engine, scheduler=args.scheduler, overlays=args.overlays,
        report=args.report, subjects=args.subjects, resume=args.resume, overwrite=args.overwrite,
        settings=overrides, progress=args.progress, report_max_photos=args.report_max_photos,
    )
    try:
        Settings(**dict(overrides))  # bad values are usage errors, before any work
        summary = run_batch(config)
    except BatchUsageError as exc:
        print(f"toeangle batch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while finding photos, sorting or writing the report: finished rows are kept
        print("toeangle batch: interrupted; run again with --resume to finish", file=sys.stderr)
        return 130
    print(summary.text())
    return summary.exit_code
