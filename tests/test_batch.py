"""toeangle batch end to end: discovery by content, rows, broken files, order, resume, exit codes."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from toeangle.batch.discover import Discovery, discover, sniff
from toeangle.batch.rows import CSV_COLUMNS, Row
from toeangle.batch.writers import finalize, read_rows, repair
from toeangle.cli import main


def _photo_helpers():
    """tests/conftest.py's photo helpers, by path: a bare ``from conftest import`` gets whichever
    conftest pytest imported last (tests/service/ has one too)."""
    spec = importlib.util.spec_from_file_location("toeangle_test_photos", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _photo_helpers()
jpeg_bytes, stickers_at_angle = _helpers.jpeg_bytes, _helpers.stickers_at_angle

ANGLES = (12.0, 24.0, 31.0, 38.0, 47.0, 55.0, 63.0, 71.0, 80.0)


def make_folder(root: Path, angles=ANGLES, scale: float = 1.0) -> dict[str, float]:
    """Marker photos with known angles on a real foot (some in a subfolder, one without extension).

    Returns {path: true angle} for the marker photos.
    """
    truth = {}
    (root / "visit" / "deeper").mkdir(parents=True, exist_ok=True)
    for i, angle in enumerate(angles):
        rgb, _ = stickers_at_angle(angle, long_side=round(640 * scale))
        name = [f"alice_2026-0{1 + i // 3}-{10 + i:02d}.jpg", f"visit/bob_2026-03-{i + 1:02d}_left.jpg",
                f"visit/deeper/IMG_{i:04d}"][i % 3]
        path = root / name
        path.write_bytes(jpeg_bytes(rgb))
        truth[str(path)] = angle
    return truth


@pytest.fixture
def folder(tmp_path, real_photos):
    root = tmp_path / "photos"
    truth = make_folder(root)
    good = (root / "alice_2026-01-10.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(good[: len(good) // 3])          # truncated JPEG
    (root / "visit" / "scan.png").write_text("this is not a picture")  # a photo by name only
    (root / "notes.txt").write_text("appointment notes")               # no photo: skipped
    (root / "empty.jpg").write_bytes(b"")
    shutil.copy(real_photos[0], root / "visit" / "markerless.png")     # real photo, no stickers
    return root, truth


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sniff_knows_images_by_bytes():
    assert sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00") == "JPEG"
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00") == "PNG"
    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00") == "HEIF"
    assert sniff(b"hello world, not") is None and sniff(b"") is None


def test_discovery_walks_folders_by_content_and_globs(folder):
    root, truth = folder
    found = Discovery()
    paths = [p.path for p in discover([str(root)], found)]
    names = {os.path.relpath(p, root) for p in paths}
    assert "visit/deeper/IMG_0002" in names                     # a JPEG without extension
    assert {"broken.jpg", "visit/scan.png", "empty.jpg", "visit/markerless.png"} <= names
    assert "notes.txt" not in names and found.skipped == 1
    assert len(paths) == len(truth) + 4 == len(set(paths))
    # a glob plus an overlapping folder: every file once; a text file named on purpose is kept
    both = [p.path for p in discover([str(root / "**" / "*.jpg"), str(root), str(root / "notes.txt")])]
    assert len(both) == len(set(both)) == len(paths) + 1
    missing = Discovery()
    assert list(discover([str(root / "nope" / "*.jpg"), str(root / "absent.jpg")], missing)) == []
    assert len(missing.missing) == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_csv_rows_errors_and_exit_code(folder, tmp_path, capsys, workers):
    root, truth = folder
    out = tmp_path / "results.csv"
    code = main(["batch", str(root), "--out", str(out), "--workers", str(workers), "--quiet"])
    assert code == 1  # two broken files and an empty one failed
    summary = capsys.readouterr().out
    assert "Failures (3)" in summary and "broken.jpg" in summary and "error 3" in summary
    rows = _csv(out)
    assert list(rows[0]) == list(CSV_COLUMNS)
    paths = [r["path"] for r in rows]
    assert paths == sorted(paths) and len(paths) == len(truth) + 4
    by_path = {r["path"]: r for r in rows}
    for path, angle in truth.items():
        row = by_path[path]
        assert row["status"] == "ok", row
        assert abs(float(row["angle_deg"]) - angle) < 1.0
        assert row["verdict"] == ("normal" if angle >= 65 + float(row["uncertainty_deg"]) else row["verdict"])
        assert row["first_mtp_x"] and row["first_mtp_conf"] and row["heel_y"] and row["hallux_tip_x"] == ""
        assert row["size"] == str(os.path.getsize(path))
    assert by_path[str(root / "broken.jpg")]["status"] == "error"
    assert "CorruptImageError" in by_path[str(root / "broken.jpg")]["error"]
    assert "UnsupportedImageError" in by_path[str(root / "visit" / "scan.png")]["error"]
    assert by_path[str(root / "empty.jpg")]["error"] == "empty file"
    assert by_path[str(root / "visit" / "markerless.png")]["status"] in ("ok", "unmeasurable")


def test_jsonl_nests_landmarks_and_matches_csv(folder, tmp_path):
    root, truth = folder
    good = [p for p in truth]  # only measurable photos: exit code 0
    assert main(["batch", *good, "--out", str(tmp_path / "r.jsonl"), "--workers", "2", "--quiet",
                 "--overlays", str(tmp_path / "ov"), "--protocol", "active_nwb"]) == 0
    assert main(["batch", *good, "--out", str(tmp_path / "r.csv"), "--workers", "1", "--quiet",
                 "--protocol", "active_nwb"]) == 0
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert set(first["landmarks"]) == {"heel", "first_metatarsal", "first_mtp", "hallux_ip"}
    assert set(first["landmarks"]["first_mtp"]) >= {"x", "y", "confidence"} and isinstance(first["reasons"], list)
    from_json = {r.path: r for r in read_rows(tmp_path / "r.jsonl")}
    from_csv = {r.path: r for r in read_rows(tmp_path / "r.csv")}
    assert from_json.keys() == from_csv.keys() == set(truth)
    for path, row in from_json.items():
        other = from_csv[path]
        assert row.protocol == "active_nwb" and row.normal_min_deg == 42
        assert (row.angle_deg, row.verdict, row.grade) == (other.angle_deg, other.verdict, other.grade)
        assert row.landmarks.first_mtp.x == other.landmarks.first_mtp.x
    # overlays mirror the folder layout under the inputs' common root
    overlays = sorted(p.relative_to(tmp_path / "ov").as_posix() for p in (tmp_path / "ov").rglob("*.png"))
    assert "alice_2026-01-10.jpg.png" in overlays and "visit/deeper/IMG_0002.png" in overlays
    assert len(overlays) == len(truth)


def test_usage_errors_exit_2(folder, tmp_path, capsys):
    root, _ = folder
    out = tmp_path / "r.csv"
    assert main(["batch", str(root / "absent"), "--out", str(out), "--quiet"]) == 2
    assert main(["batch", str(root), "--out", str(tmp_path / "r.xlsx"), "--quiet"]) == 2
    out.write_text("path,status\nx,ok\n")
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 2  # exists: needs --resume or --overwrite
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--resume"]) == 2  # other columns
    assert "exists" in capsys.readouterr().err


def test_csv_survives_awkward_paths_and_a_torn_last_line(tmp_path):
    out = tmp_path / "r.csv"
    from toeangle.batch.writers import RowWriter
    odd = 'a "quoted",\nname.jpg'
    with RowWriter(out) as writer:
        writer.write(Row.failed("b.jpg", 1, 1, "passive_nwb", "bad"))
        writer.write(Row.failed(odd, 2, 2, "passive_nwb", "multi\nline error"))
        writer.write(Row.failed("a.jpg", 3, 3, "passive_nwb", "first try"))
        writer.write(Row.failed("a.jpg", 3, 4, "passive_nwb", "second try"))
    with open(out, "a") as fh:
        fh.write('c.jpg,ok,12.5,,normal')  # a kill in the middle of a write
    assert [r.path for r in read_rows(out)] == ["b.jpg", odd, "a.jpg", "a.jpg"]
    repair(out)
    assert out.read_text().endswith("\n")
    assert finalize(out) == 3
    rows = list(read_rows(out))
    assert [r.path for r in rows] == sorted(["a.jpg", "b.jpg", odd])
    by_path = {r.path: r for r in rows}
    assert by_path["a.jpg"].error == "second try" and by_path[odd].error == "multi line error"


# The CLI as a terminal's foreground job starts it: with Ctrl-C enabled. A shell that starts a job in
# the background without job control (CI runners, `make test &` in a script) hands it SIGINT ignored,
# Python keeps an inherited ignore, and the "interrupted" run would simply finish.
_FOREGROUND_CLI = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "runpy.run_module('toeangle.cli', run_name='__main__')")


def _run_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _FOREGROUND_CLI, "batch", *args, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows_in(path: Path) -> int:
    return max(0, path.read_text().count("\n") - 1) if path.exists() else 0


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_resume_after_an_interrupted_run(tmp_path, real_photos, how):
    """Stop a run part-way (Ctrl-C, or a hard kill), then --resume completes the set without duplicates."""
    root = tmp_path / "photos"
    truth = make_folder(root, angles=tuple(np.linspace(10, 85, 36)), scale=3.0)
    out = tmp_path / "r.csv"
    proc = _run_cli([str(root), "--out", str(out), "--workers", "1"])
    deadline = time.monotonic() + 60
    while _rows_in(out) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == (130 if how == "sigint" else -signal.SIGKILL), stdout
    if how == "sigint":
        assert "Interrupted" in stdout and "--resume" in stdout
    else:
        with open(out, "a") as fh:  # as if the kill landed in the middle of a row
            fh.write(f"{root}/torn.jpg,ok,33.")
    before = {r.path: r for r in read_rows(out) if r.path in truth}
    assert 4 <= len(before) < len(truth), "the run was not stopped part-way"

    proc = _run_cli([str(root), "--out", str(out), "--workers", "2", "--resume"])
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stdout + stderr
    assert f"{len(before)} already done" in stdout
    rows = list(read_rows(out))
    paths = [r.path for r in rows]
    assert paths == sorted(truth) and len(set(paths)) == len(paths)
    for row in rows:
        assert row.status == "ok" and abs(row.angle_deg - truth[row.path]) < 1.0
        if row.path in before:
            assert row == before[row.path]  # not scored twice

    # a photo that changed since (new mtime) is scored again and replaces its row
    changed = sorted(truth)[0]
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert main(["batch", str(root), "--out", str(out), "--resume", "--quiet", "--workers", "1"]) == 0
    rows = list(read_rows(out))
    assert len(rows) == len(truth)
    assert next(r for r in rows if r.path == changed).mtime_ns == os.stat(changed).st_mtime_ns


def test_resume_retries_failed_photos(folder, tmp_path, capsys):
    root, truth = folder
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 1
    good = (root / "alice_2026-01-10.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(good)  # fixed since
    (root / "empty.jpg").unlink()
    (root / "visit" / "scan.png").unlink()
    capsys.readouterr()
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--resume"]) == 0
    assert "scored 1 photos" in capsys.readouterr().out
    rows = {r.path: r for r in read_rows(out)}
    assert rows[str(root / "broken.jpg")].status == "ok"


def _grandchildren() -> list[int]:
    """Processes whose parent is a child of this one: the pool's workers (forked by the forkserver)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    children = {pid for pid, ppid in parents.items() if ppid == os.getpid()}
    return sorted(pid for pid, ppid in parents.items() if ppid in children)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the pool's workers")
def test_a_worker_killed_mid_run_loses_no_photo(tmp_path, real_photos):
    """The OOM killer (or a native crash) takes a worker: its photos are retried, each scored once."""
    from toeangle.batch.engines import Job, LocalEngine
    root = tmp_path / "photos"
    truth = make_folder(root, angles=tuple(np.linspace(10, 85, 20)), scale=3.0)
    photos = list(discover([str(root)]))
    rows, killed = [], None
    for row in LocalEngine(Job(), workers=2).run(photos, total=len(photos)):
        rows.append(row)
        if killed is None:
            workers = _grandchildren()
            assert workers, "no pool worker found"
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
    assert killed is not None
    assert sorted(r.path for r in rows) == sorted(truth)
    assert all(r.status == "ok" and abs(r.angle_deg - truth[r.path]) < 1.0 for r in rows)


def test_progress_is_quiet_unless_on_a_terminal_or_asked(folder, tmp_path, capsys):
    root, truth = folder
    good = sorted(truth)[:3]
    assert main(["batch", *good, "--out", str(tmp_path / "a.csv"), "--workers", "1"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and "Done: scored 3 photos" in quiet.out
    assert main(["batch", *good, "--out", str(tmp_path / "b.csv"), "--workers", "1", "--progress"]) == 0
    shown = capsys.readouterr()
    assert "scoring" in shown.err and "photos/s" in shown.err and "3/3" in shown.err


def test_overwrite_keeps_the_old_file_when_the_inputs_are_wrong(folder, tmp_path):
    root, truth = folder
    out = tmp_path / "r.csv"
    assert main(["batch", *sorted(truth)[:2], "--out", str(out), "--quiet", "--workers", "1"]) == 0
    before = out.read_bytes()
    assert main(["batch", str(root / "typo"), "--out", str(out), "--quiet", "--overwrite"]) == 2
    assert out.read_bytes() == before
    assert main(["batch", *sorted(truth)[:1], "--out", str(out), "--quiet", "--overwrite", "--workers", "1"]) == 0
    assert len(list(read_rows(out))) == 1
    # nothing left to do: no engine, same file, exit 0
    assert main(["batch", *sorted(truth)[:1], "--out", str(out), "--quiet", "--resume"]) == 0
    assert len(list(read_rows(out))) == 1


def test_a_detector_that_cannot_be_built_is_a_usage_error(folder, tmp_path, monkeypatch, capsys):
    """Not one dead worker per photo: the run refuses to start, and the old results stay."""
    root, truth = folder
    out = tmp_path / "r.csv"
    assert main(["batch", *sorted(truth)[:2], "--out", str(out), "--quiet", "--workers", "1"]) == 0
    before = out.read_bytes()
    monkeypatch.setenv("TOEANGLE_CLINICAL_FILE", str(tmp_path / "missing.toml"))
    capsys.readouterr()
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--overwrite", "--workers", "2"]) == 2
    assert "cannot set up the measurement" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_resume_matches_a_photo_named_relative_or_absolute(folder, tmp_path, monkeypatch, capsys):
    root, truth = folder
    out = tmp_path / "r.csv"
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 1
    monkeypatch.chdir(root.parent)
    capsys.readouterr()
    main(["batch", "photos", "--out", str(out), "--quiet", "--resume"])
    summary = capsys.readouterr().out
    assert f"{len(truth) + 1} already done" in summary  # all but the 3 failed files, retried
    assert "rows of photos not among these paths" not in summary
    rows = list(read_rows(out))
    assert len(rows) == len({os.path.abspath(r.path) for r in rows}) == len(truth) + 4
    assert [r.path for r in rows if r.path.endswith("broken.jpg")] == ["photos/broken.jpg"]  # retried, new spelling
