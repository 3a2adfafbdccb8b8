"""toeangle batch on a Dask LocalCluster, and the HTML report read back as HTML (and run in a browser)."""

from __future__ import annotations

import base64
import csv
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from test_batch import make_folder

from toeangle.batch.writers import read_rows
from toeangle.cli import main


@pytest.fixture
def folder(tmp_path, real_photos):
    root = tmp_path / "photos"
    truth = make_folder(root)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    shutil.copy(real_photos[0], root / "markerless.png")
    return root, truth


def test_dask_engine_on_a_local_cluster_matches_the_local_pool(folder, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    root, truth = folder
    local = tmp_path / "local.csv"
    assert main(["batch", str(root), "--out", str(local), "--workers", "1", "--quiet"]) == 1
    capsys.readouterr()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        out = tmp_path / "dask.jsonl"
        overlays = tmp_path / "ov"
        code = main(["batch", str(root), "--out", str(out), "--engine", "dask", "--scheduler",
                     cluster.scheduler_address, "--overlays", str(overlays), "--quiet"])
        assert code == 1
        assert "dask, 1 worker" in capsys.readouterr().out
        # scored on the cluster's worker process, not here: it has built its Measurer once
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)
            assert os.getpid() not in pids.values()
    remote = {r.path: r for r in read_rows(out)}
    expected = {r.path: r for r in read_rows(local)}
    assert remote.keys() == expected.keys() and len(remote) == len(truth) + 2
    for path, row in remote.items():
        assert row.model_dump(exclude={"ms", "cpu_ms"}) == expected[path].model_dump(exclude={"ms", "cpu_ms"})
    assert remote[str(root / "broken.jpg")].status == "error"
    assert len(list(overlays.rglob("*.png"))) == len(truth) + 1  # measured + the unmeasurable markerless one


class Tree(HTMLParser):
    """Just enough of a DOM: every element with its attributes, ancestors and text."""

    def __init__(self):
        super().__init__()
        self.elements: list[dict] = []
        self.stack: list[dict] = []

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": list(self.stack)}
        self.elements.append(el)
        if tag not in ("img", "meta", "br", "input", "link"):  # HTML void elements
            self.stack.append(el)

    def handle_startendtag(self, tag, attrs):
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": "", "parents": list(self.stack)})

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def find(self, tag, cls=None, within=None):
        return [e for e in self.elements if e["tag"] == tag
                and (cls is None or cls in e["attrs"].get("class", "").split())
                and (within is None or any(p is within for p in e["parents"]))]


def _parse(path: Path) -> Tree:
    tree = Tree()
    tree.feed(path.read_text(encoding="utf-8"))
    return tree


def test_report_is_one_self_contained_page_with_histogram_counts_thumbnails_and_trends(folder, tmp_path):
    root, truth = folder
    out, report = tmp_path / "r.csv", tmp_path / "report.html"
    subjects = tmp_path / "subjects.csv"
    with open(subjects, "w", newline="") as fh:  # the IMG_ files have no date in their names: a table tells
        writer = csv.writer(fh)
        writer.writerow(["path", "subject", "date"])
        for i, path in enumerate(p for p in sorted(truth) if "IMG_" in p):
            writer.writerow([os.path.relpath(path, tmp_path), "carol", f"2025-1{i}-01"])
    assert main(["batch", str(root), "--out", str(out), "--report", str(report), "--subjects", str(subjects),
                 "--quiet", "--workers", "2"]) == 1
    rows = list(read_rows(out))
    measured = [r for r in rows if r.angle_deg is not None]
    page = report.read_text()
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    tree = _parse(report)

    # the histogram: one bar per (bin, verdict), counts adding up, bins where the angles are
    hist = tree.find("svg", "histogram")
    assert len(hist) == 1
    bars = tree.find("rect", "bar", within=hist[0])
    assert sum(int(b["attrs"]["data-count"]) for b in bars) == len(measured)
    for r in measured:
        assert any(float(b["attrs"]["data-bin"]) <= r.angle_deg < float(b["attrs"]["data-bin"]) + 5
                   and b["attrs"]["data-verdict"] == r.verdict for b in bars)
    (threshold,) = tree.find("line", "threshold", within=hist[0])
    assert float(threshold["attrs"]["data-deg"]) == 65.0  # passive_nwb's normal minimum
    tx = float(threshold["attrs"]["x1"])
    for b in bars:  # bars left of the marker hold angles below it, and the other way round
        x0, x1 = float(b["attrs"]["x"]), float(b["attrs"]["x"]) + float(b["attrs"]["width"])
        assert (x1 <= tx) == (float(b["attrs"]["data-bin"]) + 5 <= 65.0)
        assert (x0 >= tx) == (float(b["attrs"]["data-bin"]) >= 65.0)

    # the counts
    def counts(css):
        (table,) = tree.find("table", css)
        cells = tree.find("td", within=table)
        return {cells[i]["text"]: int(cells[i + 1]["text"]) for i in range(0, len(cells), 2)}
    assert counts("counts-status") == {s: sum(r.status == s for r in rows) for s in ("ok", "unmeasurable", "error")}
    verdicts = {v: sum(r.verdict == v for r in rows) for v in ("normal", "borderline", "restricted", "test-mismatch")}
    assert counts("counts-verdict") == {v: n for v, n in verdicts.items() if n or v != "test-mismatch"}
    assert sum(counts("counts-grade").values()) == len(measured)

    # the photo table: every row, thumbnails as inline JPEGs with the overlay, sortable by angle
    (table,) = tree.find("table", "sortable")
    trs = [tr for tr in tree.find("tr", within=table) if tree.find("td", within=tr)]
    assert len(trs) == len(rows)
    imgs = tree.find("img", "thumb", within=table)
    assert len(imgs) == len([r for r in rows if r.status != "error"])
    for img in imgs:
        src = img["attrs"]["src"]
        assert src.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as thumb:
            assert max(thumb.size) == 200
    angle_cells = tree.find("td", "angle", within=table)
    assert sorted(float(c["attrs"]["data-value"]) for c in angle_cells if c["attrs"]["data-value"]) == \
        sorted(r.angle_deg for r in measured)
    (script,) = tree.find("script")
    assert "table.sortable th" in script["text"] and ".sort(" in script["text"]

    # one chart per person: alice and bob from the file names, carol from --subjects
    trends = {svg["attrs"]["data-subject"]: svg for svg in tree.find("svg", "trend")}
    assert set(trends) == {"alice", "bob", "carol"}
    for svg in trends.values():
        dates = [c["attrs"]["data-date"] for c in tree.find("circle", "point", within=svg)]
        assert len(dates) == 3 and len(tree.find("polyline", within=svg)) == 1
        assert len(tree.find("line", "threshold", within=svg)) == 1
    alice = tree.find("circle", "point", within=trends["alice"])
    assert [c["attrs"]["data-date"] for c in alice] == ["2026-01-10", "2026-02-13", "2026-03-16"]
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in rows}
    assert float(alice[0]["attrs"]["data-angle"]) == by_name["alice_2026-01-10.jpg"].angle_deg
    assert [c["attrs"]["data-date"] for c in tree.find("circle", "point", within=trends["carol"])] == \
        ["2025-10-01", "2025-11-01", "2025-12-01"]


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium to run the page's script")
def test_report_table_sorts_by_angle_in_a_browser(folder, tmp_path):
    root, truth = folder
    out, report = tmp_path / "r.jsonl", tmp_path / "report.html"
    assert main(["batch", *sorted(truth), "--out", str(out), "--report", str(report), "--quiet"]) == 0
    clicked = tmp_path / "clicked.html"  # the report as a user would leave it after clicking "angle" once
    clicked.write_text(report.read_text().replace(
        "</body>", "<script>document.querySelectorAll('#photos th')[3].click();</script></body>"))
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--dump-dom", clicked.as_uri()], capture_output=True, text=True, timeout=60).stdout
    tree = Tree()
    tree.feed(dom)
    angles = [float(c["attrs"]["data-value"]) for c in tree.find("td", "angle")]
    assert len(angles) == len(truth) and angles == sorted(angles)
    assert angles != [r.angle_deg for r in read_rows(out)]  # the file's order is by path, not by angle


def test_report_table_is_capped_but_counts_and_charts_use_every_row(folder, tmp_path):
    from toeangle.batch.report import build_report
    root, truth = folder
    out = tmp_path / "r.csv"
    main(["batch", str(root), "--out", str(out), "--quiet"])
    rows = list(read_rows(out))
    page = tmp_path / "capped.html"
    page.write_text(build_report(lambda: read_rows(out), max_photos=4))
    tree = _parse(page)
    (table,) = tree.find("table", "sortable")
    assert len([tr for tr in tree.find("tr", within=table) if tree.find("td", within=tr)]) == 4
    assert f"4 of {len(rows)} photos" in page.read_text()
    bars = tree.find("rect", "bar")
    assert sum(int(b["attrs"]["data-count"]) for b in bars) == sum(r.angle_deg is not None for r in rows)
