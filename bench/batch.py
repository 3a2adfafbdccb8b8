"""Batch throughput: photos/s for 1 worker and for all workers, and the cost against the single-photo path.

Makes a folder of phone-sized photos (a real foot from ../shared/real-photos with green
stickers drawn on it for a known angle, tests/conftest.py: stickers_at_angle), adds the real
markerless photos and a few broken files, then measures:

- the single-photo path's compute: ``Measurer.measure_photo`` in this process, after a
  warm-up (what ``toeangle measure`` runs for one photo, without Python's start-up);
- ``toeangle batch`` (``run_batch``) with 1 worker and with all workers, wall clock from
  start to the sorted results file (pool start-up, file reading and writing included).

It prints photos/s, the speed-up, the batch per-photo cost against the single path, and
the angle error against the drawn truth. Works with any detector (``--detector`` or
TOEANGLE_DETECTOR). Usage: ``python bench/batch.py [--photos 240] [--side 4032]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import REAL_PHOTOS, jpeg_bytes, stickers_at_angle  # noqa: E402

from toeangle.batch import BatchConfig, run_batch  # noqa: E402
from toeangle.batch.writers import read_rows  # noqa: E402
from toeangle.pipeline import Measurer  # noqa: E402
from toeangle.settings import Settings  # noqa: E402


def make_photos(folder: Path, count: int, side: int, seed: int = 5) -> dict[str, float]:
    """``count`` sticker photos with a longest side of ``side`` px; returns {path: true angle}."""
    rng = np.random.default_rng(seed)
    truth = {}
    for i in range(count):
        angle = float(rng.uniform(5, 90))
        big, _ = stickers_at_angle(angle, long_side=side)
        sub = folder / f"visit{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"subject{i % 25:02d}_2026-{1 + i % 12:02d}-{1 + i % 28:02d}_{i:04d}.jpg"
        path.write_bytes(jpeg_bytes(big, quality=90))
        truth[str(path)] = angle
    extra = folder / "markerless"
    extra.mkdir(exist_ok=True)
    for p in REAL_PHOTOS:
        shutil.copy(p, extra / f"{p.parent.name}_{p.name}")
    good = Path(next(iter(truth))).read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "not_a_photo.jpg").write_text("text in disguise")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("skipped: not a photo")
    return truth


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def single_path(files: list[Path], settings: Settings) -> tuple[float, float]:
    """Seconds of measure_photo per photo after a warm-up: wall clock, and CPU of this process."""
    measurer = Measurer(settings)
    blobs = [f.read_bytes() for f in files]
    for data in blobs[:3]:
        try:
            measurer.measure_photo(data)
        except Exception:
            pass
    started, cpu = time.perf_counter(), time.process_time()
    for data in blobs:
        try:
            measurer.measure_photo(data)
        except Exception:
            pass  # broken files cost their decode attempt, as in the batch
    return (time.perf_counter() - started) / len(blobs), (time.process_time() - cpu) / len(blobs)


def cpu_per_photo(out: Path) -> tuple[float, float]:
    """Mean and total CPU seconds per photo in the batch's workers (the rows' cpu_ms)."""
    values = [r.cpu_ms for r in read_rows(out) if r.cpu_ms is not None]
    return float(np.mean(values)) / 1e3, float(np.sum(values)) / 1e3


def batch(folder: Path, out: Path, workers: int, settings: tuple) -> tuple[float, int]:
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    summary = run_batch(BatchConfig(inputs=(str(folder),), out=out, workers=workers, settings=settings,
                                    progress=False))
    return time.perf_counter() - started, summary.rows


def errors(out: Path, truth: dict[str, float]) -> tuple[int, float, float]:
    rows = {r.path: r for r in read_rows(out)}
    diffs = [abs(rows[p].angle_deg - a) for p, a in truth.items() if rows[p].angle_deg is not None]
    return len(diffs), float(np.median(diffs)), float(np.max(diffs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=240, help="sticker photos to make (default 240)")
    parser.add_argument("--side", type=int, default=4032, help="their longest side in px (default 4032, 12 MP)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="'all workers' (default: cores)")
    parser.add_argument("--detector", help="landmark source (default: TOEANGLE_DETECTOR or auto)")
    parser.add_argument("--decode-max-side", type=int, action="append", default=[],
                        help="also run the all-workers batch with this decode size (repeatable), for speed and error")
    parser.add_argument("--keep", type=Path, help="make the photos here and keep them (default: a temp dir)")
    args = parser.parse_args()

    overrides = (("detector", args.detector),) if args.detector else ()
    settings = Settings(**dict(overrides))
    tmp = Path(tempfile.mkdtemp(prefix="toeangle-bench-"))
    folder = args.keep or tmp / "photos"
    try:
        started = time.perf_counter()
        truth = make_photos(folder, args.photos, args.side)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".txt")
        print(f"photos: {len(files)} files ({args.photos} with stickers at {args.side} px, "
              f"{len(REAL_PHOTOS)} real markerless, 3 broken) made in {time.perf_counter() - started:.0f} s")
        print(f"detector: {settings.detector}; decode_max_side {settings.decode_max_side}; cores {os.cpu_count()}; "
              f"load average at start {load()}")

        single, single_cpu = single_path(files, settings)
        print(f"single-photo path (Measurer.measure_photo, in process): {single * 1e3:.1f} ms/photo "
              f"= {1 / single:.1f} photos/s; CPU {single_cpu * 1e3:.1f} ms/photo")

        wall1, n = batch(folder, tmp / "one.csv", 1, overrides)
        walln, _ = batch(folder, tmp / "all.csv", args.workers, overrides)
        rate1, raten = n / wall1, n / walln
        print(f"batch, 1 worker:  {n} photos in {wall1:.2f} s = {rate1:.1f} photos/s "
              f"({wall1 / n * 1e3:.1f} ms/photo, {wall1 / n / single:.2f}x the single path)")
        print(f"batch, {args.workers} workers: {n} photos in {walln:.2f} s = {raten:.1f} photos/s "
              f"({walln / n * 1e3 * args.workers:.1f} worker-ms/photo, "
              f"{walln / n * args.workers / single:.2f}x the single path)")
        print(f"speed-up {args.workers} workers vs 1: {rate1 and raten / rate1:.2f}x")
        (cpu1, total1), (cpun, totaln) = cpu_per_photo(tmp / "one.csv"), cpu_per_photo(tmp / "all.csv")
        print(f"CPU per photo: single path {single_cpu * 1e3:.1f} ms, batch 1 worker {cpu1 * 1e3:.1f} ms "
              f"({cpu1 / single_cpu:.2f}x), batch {args.workers} workers {cpun * 1e3:.1f} ms ({cpun / single_cpu:.2f}x)")
        print(f"cores the batch got (its CPU seconds / wall seconds): 1 worker {total1 / wall1:.2f}, "
              f"{args.workers} workers {totaln / walln:.2f} of {os.cpu_count()}")
        k, med, worst = errors(tmp / "all.csv", truth)
        print(f"angle error vs drawn truth ({k}/{len(truth)} sticker photos measured): median {med:.2f} deg, "
              f"max {worst:.2f} deg")
        for side in args.decode_max_side:
            wall, _ = batch(folder, tmp / f"d{side}.csv", args.workers, overrides + (("decode_max_side", side),))
            k, med, worst = errors(tmp / f"d{side}.csv", truth)
            print(f"decode_max_side {side}, {args.workers} workers: {n / wall:.1f} photos/s; "
                  f"{k}/{len(truth)} measured, error median {med:.2f} deg, max {worst:.2f} deg")
        print(f"load average at end {load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
