"""toeangle batch against hostile file systems: any file name, spreadsheet formulas, symlink loops,
FIFOs, devices, huge files. Each test failed before the fix it names (issue 20, items 7-9)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from toeangle.batch.discover import Discovery, discover
from toeangle.batch.rows import Row
from toeangle.batch.writers import RowWriter, finalize, read_rows
from toeangle.cli import main
from toeangle.schema import Landmarks, Point

NASTY_NAMES = ['a"quoted".jpg', '"', 'x",y.jpg', "line\nbreak.jpg", "carriage\rreturn.jpg", "tab\t.jpg",
               "=HYPERLINK(\"x\").jpg", "+1.jpg", "-2.jpg", "@SUM(A1).jpg", "'quoted.jpg", "''.jpg",
               "\tlead.jpg", "\rlead.jpg", "naïve ü 写真.jpg", " space .jpg", "back\\slash.jpg", "{}[],:.jpg",
               os.fsdecode(b"latin1-\xe9\xff.jpg"), "z.jpg"]


def _blank_jpeg() -> bytes:
    """A photo the detector reads and refuses (unmeasurable) in milliseconds: --resume keeps its row."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 180, 160)).save(buf, "JPEG")
    return buf.getvalue()


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """The CLI in a child process: a run that hangs fails the test instead of hanging the suite."""
    return subprocess.run([sys.executable, "-m", "toeangle.cli", "batch", *args, "--quiet"],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_no_file_name_loses_a_row_in_a_run_or_a_resume(tmp_path, suffix, capsys):
    """Issue 20 #7: a name with '"' in a JSONL run lost its row and every row sorted after it."""
    root = tmp_path / "photos"
    root.mkdir()
    photo = _blank_jpeg()
    for name in NASTY_NAMES:
        (root / name).write_bytes(photo)
    expected = sorted(os.path.join(str(root), name) for name in NASTY_NAMES)
    out, report = tmp_path / f"r{suffix}", tmp_path / "report.html"
    assert main(["batch", str(root), "--out", str(out), "--workers", "1", "--quiet", "--report", str(report)]) == 0
    assert "latin1-??.jpg" in report.read_text(encoding="utf-8")  # the page is UTF-8; such bytes show as "?"
    rows = list(read_rows(out))
    assert [r.path for r in rows] == expected
    assert all(r.status == "unmeasurable" for r in rows)
    if suffix == ".jsonl":
        out.read_bytes().decode("utf-8")  # JSONL stays UTF-8: a name that is not is escaped
        assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == expected
    capsys.readouterr()
    assert main(["batch", str(root), "--out", str(out), "--workers", "1", "--quiet", "--resume"]) == 0
    assert "scored 0 photos" in capsys.readouterr().out
    assert [r.path for r in read_rows(out)] == expected


_NAME_BYTES = st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")).filter(
    lambda b: b not in (b".", b".."))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(_NAME_BYTES, min_size=1, max_size=12, unique=True))
def test_every_file_name_the_file_system_allows_survives_csv_and_jsonl(tmp_path_factory, names):
    """Any bytes but '/' and NUL: created, discovered, written, sorted and read back unchanged."""
    root = tmp_path_factory.mktemp("names")
    for name in names:
        with open(os.path.join(os.fsencode(root), name), "wb") as fh:
            fh.write(b"\xff\xd8\xff broken jpeg")
    photos = list(discover([str(root)]))
    expected = sorted(os.path.join(str(root), os.fsdecode(name)) for name in names)
    assert sorted(p.path for p in photos) == expected
    for suffix in (".csv", ".jsonl"):
        out = root.parent / f"{root.name}{suffix}"
        with RowWriter(out) as writer:
            for photo in reversed(photos):
                writer.write(Row.failed(photo.path, photo.size, photo.mtime_ns, "passive_nwb", "CorruptImageError: x"))
        assert finalize(out) == len(names)
        assert [r.path for r in read_rows(out)] == expected


def test_csv_cells_that_spreadsheets_would_run_are_neutralised(tmp_path):
    """Issue 20 #8: cells starting with = + - @ (tab, CR) were written as they were."""
    out = tmp_path / "r.csv"
    row = Row(path="=cmd|' /C calc'!A0", status="ok", protocol="passive_nwb", angle_deg=-3.2,
              view_correction_deg=-12.5, reasons=("+SUM(A1)", "ok"), error="@evil", detector="-x",
              landmarks=Landmarks(heel=Point(x=-4.5, y=10.0, confidence=0.9, sigma_px=1.0)), size=1, mtime_ns=-5)
    with RowWriter(out) as writer:
        writer.write(row)
    with open(out, newline="") as fh:
        record = next(csv.DictReader(fh))
    assert record["path"] == "'=cmd|' /C calc'!A0"
    assert record["reasons"] == "'+SUM(A1) | ok" and record["error"] == "'@evil" and record["detector"] == "'-x"
    # numbers stay numbers: negative angles and coordinates are written bare
    assert record["angle_deg"] == "-3.2" and record["view_correction_deg"] == "-12.5"
    assert record["heel_x"] == "-4.5" and record["mtime_ns"] == "-5"
    assert list(read_rows(out)) == [row]


def _loops(root: Path) -> None:
    """A tree with two symlink loops and a link into the tree itself."""
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.jpg").write_bytes(_blank_jpeg())
    (root / "top.jpg").write_bytes(_blank_jpeg())
    (root / "a" / "loop1").symlink_to("..")
    (root / "a" / "b" / "loop2").symlink_to("../..")
    (root / "a" / "0_link_to_b").symlink_to("b")  # sorts first: the real path must still win


@pytest.mark.parametrize("pattern", [None, "**/*.jpg", "**"])
def test_symlink_loops_end_fast_with_real_paths(tmp_path, pattern):
    """Issue 20 #9: two loops made the walk exponential; one reported paths 40 levels deep."""
    root = tmp_path / "photos"
    _loops(root)
    started = time.perf_counter()
    item = str(root) if pattern is None else str(root / pattern)
    paths = sorted(p.path for p in discover([item]))
    assert time.perf_counter() - started < 5.0
    assert paths == [str(root / "a" / "b" / "deep.jpg"), str(root / "top.jpg")]


def test_a_link_to_a_folder_outside_the_tree_is_followed_once(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "far.jpg").write_bytes(_blank_jpeg())
    root = tmp_path / "photos"
    root.mkdir()
    (root / "link1").symlink_to(outside)
    (root / "link2").symlink_to(outside)
    assert [p.path for p in discover([str(root)])] == [str(root / "link1" / "far.jpg")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_fifos_devices_and_huge_files_are_error_rows_and_the_run_goes_on(tmp_path, workers):
    """Issue 20 #9: a FIFO hung the run; a 4 GB .jpg aborted it (1 worker) or hung it (2 workers)."""
    root = tmp_path / "photos"
    root.mkdir()
    (root / "good.jpg").write_bytes(_blank_jpeg())
    os.mkfifo(root / "pipe.jpg")
    os.mkfifo(root / "pipe")  # no photo name: still a row, it is no file to skip silently
    (root / "huge.jpg").touch()
    os.truncate(root / "huge.jpg", 4 * 2**30)  # sparse: 4 GB by its size, nothing on disk
    (root / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    os.truncate(root / "video.mp4", 4 * 2**30)  # a clip by its bytes: scored as one (issue 21), so refused unread
    (root / "tty").symlink_to("/dev/null")
    out = tmp_path / "r.csv"
    done = _cli(str(root), str(root / "pipe.jpg"), "/dev/zero", "--out", str(out), "--workers", workers)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {r.path: r for r in read_rows(out)}
    assert rows[str(root / "good.jpg")].status == "unmeasurable"
    for name in ("pipe.jpg", "pipe"):
        assert rows[str(root / name)].error == "not a regular file (a FIFO): not opened"
    assert rows["/dev/zero"].error == "not a regular file (a character device): not opened"
    assert rows[str(root / "tty")].error == "not a regular file (a character device): not opened"
    assert rows[str(root / "huge.jpg")].error.startswith("file too large: 4.0 GB, the limit is 100.0 MB")
    assert rows[str(root / "video.mp4")].error.startswith("file too large: 4.0 GB, the limit is 100.0 MB")
    assert len(rows) == 7 and "0 other files skipped" in done.stdout


def test_the_size_limit_is_configurable(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "small.jpg").write_bytes(_blank_jpeg())
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(root), "--out", str(out), "--workers", "1", "--quiet", "--max-file-size", "100"]) == 1
    assert next(read_rows(out)).error.startswith("file too large: 692 bytes, the limit is 100 bytes")
    monkeypatch.setenv("TOEANGLE_BATCH_MAX_FILE_BYTES", "100")
    found = Discovery()
    from toeangle.settings import get_settings
    get_settings.cache_clear()
    try:
        assert next(discover([str(root)], found)).problem.startswith("file too large")
    finally:
        get_settings.cache_clear()
    assert main(["batch", str(root), "--out", str(out), "--overwrite", "--quiet", "--max-file-size", "1M"]) == 0
    with pytest.raises(SystemExit):
        main(["batch", str(root), "--out", str(out), "--overwrite", "--quiet", "--max-file-size", "lots"])


_SABOTAGE = '''
import os, signal
import toeangle.batch.engines as engines
_score = engines.score
def score(measurer, job, photo):
    name = os.path.basename(photo.path)
    if name == "crash.jpg":
        os.kill(os.getpid(), signal.SIGKILL)  # a native crash, the OOM killer
    if name == "oom.jpg":
        raise MemoryError("no memory for this one")  # escapes the row: the whole batch fails
    return _score(measurer, job, photo)
engines.score = score
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver workers inherit PYTHONPATH")
def test_a_photo_that_kills_or_breaks_its_worker_is_an_error_row_and_the_run_goes_on(tmp_path):
    """Each pool worker loads a sitecustomize that kills the worker on crash.jpg and raises past
    the row on oom.jpg (before: that exception ended the run, and with 2 workers it hung)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_SABOTAGE)
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("a.jpg", "crash.jpg", "m.jpg", "oom.jpg", "z.jpg"):
        (root / name).write_bytes(_blank_jpeg())
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "toeangle.cli", "batch", str(root), "--out", str(out),
                           "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    rows = {os.path.basename(r.path): r for r in read_rows(out)}
    assert rows["crash.jpg"].error == "the worker process died while scoring this photo"
    assert rows["oom.jpg"].error == "the worker failed on this photo: MemoryError: no memory for this one"
    assert all(rows[name].status == "unmeasurable" for name in ("a.jpg", "m.jpg", "z.jpg"))


def test_the_summary_prints_a_name_that_is_not_utf8():
    from toeangle.batch.runner import Summary
    summary = Summary()
    summary.count(Row.failed(os.fsdecode(b"bad-\xff.jpg"), 1, 1, "passive_nwb", "empty file"))
    assert "bad-\N{REPLACEMENT CHARACTER}.jpg: empty file" in summary.text().encode("utf-8").decode("utf-8")
