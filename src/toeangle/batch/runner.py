"""A batch run from start to end: discover, skip what is done, score, write, sort, summarise, report."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..schema import MeasureOptions
from ..settings import Settings
from .discover import Discovery, Photo, discover, input_root, printable
from .engines import DaskEngine, InProcessEngine, Job, LocalEngine
from .rows import Row
from .writers import ResultsFileError, RowWriter, file_format, finalize, read_rows, repair

MAX_FAILURES_SHOWN = 20


class BatchUsageError(ValueError):
    """The run cannot start as asked (exit code 2)."""


@dataclass(frozen=True)
class BatchConfig:
    inputs: tuple[str, ...]
    out: Path
    options: MeasureOptions = MeasureOptions()
    clip_options: MeasureOptions = MeasureOptions(protocol="heel_raise")
    workers: int = 1
    engine: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    overlays: Path | None = None
    report: Path | None = None
    subjects: Path | None = None
    resume: bool = False
    overwrite: bool = False
    settings: tuple[tuple[str, object], ...] = ()
    progress: bool | None = None
    """None: a progress bar only when stderr is a terminal."""
    report_max_photos: int = 500


@dataclass
class Summary:
    found: int = 0
    skipped_not_images: int = 0
    skipped_done: int = 0
    scored: int = 0
    rows: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_verdict: Counter = field(default_factory=Counter)
    by_grade: Counter = field(default_factory=Counter)
    by_test: Counter = field(default_factory=Counter)  # Row.test_and_fit, for photos with a posture
    failures: list[tuple[str, str]] = field(default_factory=list)
    other_rows: int = 0
    """Rows in the results file for photos outside this run's set (earlier runs on other paths); kept."""
    elapsed_s: float = 0.0
    interrupted: bool = False
    engine: str = ""
    workers: int = 1

    @property
    def exit_code(self) -> int:
        """0: every photo scored (measured or unmeasurable); 1: some failed; 130: interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.by_status["error"] else 0

    def count(self, row: Row) -> None:
        self.rows += 1
        self.by_status[row.status] += 1
        if row.verdict:
            self.by_verdict[row.verdict] += 1
        if row.grade is not None:
            self.by_grade[row.grade] += 1
        if row.test_and_fit:
            self.by_test[row.test_and_fit] += 1
        if row.status == "error" and len(self.failures) < MAX_FAILURES_SHOWN:
            self.failures.append((row.path, row.error or ""))

    def text(self) -> str:
        rate = self.scored / self.elapsed_s if self.elapsed_s > 0 else 0.0
        lines = []
        head = "Interrupted" if self.interrupted else "Done"
        lines.append(f"{head}: scored {self.scored} photos in {self.elapsed_s:.1f} s ({rate:.1f} photos/s, "
                     f"{self.engine}, {self.workers} worker{'s' if self.workers != 1 else ''}); "
                     f"{self.skipped_done} already done, {self.skipped_not_images} other files skipped")
        scope = "scored in this run" if self.interrupted else "all photos of these paths"
        lines.append(f"Status ({scope}, {self.rows} rows): "
                     + ", ".join(f"{k} {self.by_status[k]}" for k in ("ok", "unmeasurable", "error")))
        if self.by_verdict:
            lines.append("Verdict: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_verdict.items())))
        if self.by_grade:
            lines.append("Grade: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.by_grade.items())))
        if self.by_test:
            lines.append("Test (posture fit): " + ", ".join(f"{k}: {v}" for k, v in sorted(self.by_test.items())))
        if self.failures:
            lines.append(f"Failures ({self.by_status['error']}):")
            lines += [f"  {printable(path)}: {error}" for path, error in self.failures]
            if self.by_status["error"] > len(self.failures):
                lines.append(f"  ... and {self.by_status['error'] - len(self.failures)} more (status=error rows)")
        if self.other_rows:
            lines.append(f"(The results file also keeps {self.other_rows} rows of photos not among these paths.)")
        if self.interrupted:
            lines.append("Rows written so far are kept; run again with --resume to finish the set.")
        return "\n".join(lines)


def _engine(config: BatchConfig, job: Job, todo: int):
    if config.engine == "dask":
        return DaskEngine(job, config.scheduler, config.workers)  # the workers' own settings decide there
    try:  # a detector that cannot be built is a usage error here, not one dead worker per photo
        measurer = job.measurer()
    except Exception as exc:
        raise BatchUsageError(f"cannot set up the measurement (detector, clinical rules): {type(exc).__name__}: {exc}") from None
    workers = max(1, min(config.workers, todo))
    return InProcessEngine(job, measurer) if workers == 1 else LocalEngine(job, workers)


def _progress(enabled: bool | None):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-- photos/s" if speed is None else f"{speed:.1f} photos/s")

    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=console, disable=not show, transient=False)


def _prepare_out(config: BatchConfig) -> set[tuple[str, int, int]]:
    """Checks the results file and returns the keys already scored (for --resume)."""
    try:
        file_format(config.out)
    except ResultsFileError as exc:
        raise BatchUsageError(str(exc)) from None
    exists = config.out.exists() and config.out.stat().st_size > 0
    if not exists:
        return set()
    if config.resume:
        try:
            repair(config.out)
            return {row.key for row in read_rows(config.out)
                    if row.status != "error" and row.protocol == config.options.protocol}
        except ResultsFileError as exc:
            raise BatchUsageError(str(exc)) from None
    if config.overwrite:
        return set()  # emptied once the inputs and the detector are known to be good
    try:
        if next(read_rows(config.out), None) is None:
            return set()  # a header alone: a run that stopped before its first photo (no scheduler, ...)
    except ResultsFileError:
        pass
    raise BatchUsageError(f"{config.out} exists: add --resume to complete it or --overwrite to start again")


def run_batch(config: BatchConfig) -> Summary:
    done = _prepare_out(config)
    if config.subjects is not None:
        from .report import read_subjects
        try:
            read_subjects(config.subjects)
        except (OSError, ValueError, KeyError) as exc:
            raise BatchUsageError(f"--subjects: {exc}") from None
    summary = Summary()
    found = Discovery()
    progress = _progress(config.progress)
    started = time.perf_counter()
    with progress:
        looking = progress.add_task("finding photos", total=None)
        photos: list[Photo] = []
        for photo in discover(config.inputs, found, Settings(**dict(config.settings)).batch_max_file_bytes):
            photos.append(photo)
            if len(photos) % 1000 == 0:
                progress.update(looking, description=f"finding photos ({len(photos)})")
        progress.remove_task(looking)
        if found.missing:
            raise BatchUsageError("nothing matches: " + ", ".join(found.missing))
        summary.found = len(photos)
        summary.skipped_not_images = found.skipped
        todo = [p for p in photos if p.key not in done]
        summary.skipped_done = len(photos) - len(todo)
        in_set = {os.path.abspath(p.path) for p in photos}
        del photos
        job = Job(options=config.options, clip_options=config.clip_options, settings=config.settings,
                  overlays=None if config.overlays is None else os.path.abspath(config.overlays),
                  overlay_root=input_root(config.inputs))
        engine = _engine(config, job, len(todo))
        if config.overwrite and not config.resume and config.out.exists():
            config.out.unlink()  # only now: a typo in a path or a broken setting must not cost the old file
        summary.engine, summary.workers = engine.name, engine.workers
        this_run = Summary()
        task = progress.add_task("scoring", total=len(todo))
        rows = engine.run(todo, total=len(todo)) if todo else iter(())
        try:
            with RowWriter(config.out) as writer:
                for row in rows:
                    writer.write(row)
                    this_run.count(row)
                    progress.advance(task)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
    summary.scored = this_run.rows
    summary.workers = engine.workers
    summary.elapsed_s = time.perf_counter() - started
    if summary.interrupted:
        summary.rows, summary.by_status, summary.by_verdict = this_run.rows, this_run.by_status, this_run.by_verdict
        summary.by_grade, summary.failures = this_run.by_grade, this_run.failures
        return summary
    finalize(config.out)
    for row in read_rows(config.out):
        if os.path.abspath(row.path) in in_set:
            summary.count(row)
        else:
            summary.other_rows += 1
    if config.report is not None:
        from .report import write_report
        write_report(config.out, config.report, subjects=config.subjects, max_photos=config.report_max_photos)
    return summary

