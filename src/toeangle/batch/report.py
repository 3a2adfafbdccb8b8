"""A results file -> one self-contained HTML page (inline SVG, base64 thumbnails, no external assets).

The page shows, per protocol, the angle distribution as a histogram with the protocol's
normal threshold marked; counts by status, verdict and grade; a table of photos with
overlay thumbnails, sortable by any column (a few lines of inline JavaScript); and,
when photos can be grouped per person with dates, each person's angle over time.

Grouping: a ``--subjects`` CSV with the columns ``path,subject,date`` (date as
YYYY-MM-DD), or else the file name itself: ``<subject>_<date>[_anything].<ext>``, the
date as ``YYYY-MM-DD`` or ``YYYYMMDD`` and ``_``, ``-`` or a space before it
(``alice_2026-03-01.jpg``, ``bob-smith_20260301_left.heic``).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import cv2

from ..decode import decode_image
from ..overlay import VERDICT_COLOURS, draw_overlay
from .rows import Row
from .writers import read_rows

THUMB_SIDE = 200
"""Longest side of a thumbnail, in pixels."""
_NAME_PATTERN = re.compile(r"^(?P<subject>.+?)[_\- ](?P<date>\d{4}-\d{2}-\d{2}|\d{8})(?:[_\-. ].*)?$")
class _Angle(NamedTuple):
    """What the histogram needs of a row (a few numbers, for reports over millions of rows)."""

    angle_deg: float
    verdict: str | None
    normal_min_deg: float | None


_COLOURS = {k: "#{:02x}{:02x}{:02x}".format(*v) for k, v in VERDICT_COLOURS.items() if k}
_ORDER = ("normal", "borderline", "restricted", "test-mismatch")


def subject_from_name(path: str) -> tuple[str, dt.date] | None:
    """``alice_2026-03-01_left.jpg`` -> ("alice", 2026-03-01); None when the name has no such pattern."""
    match = _NAME_PATTERN.match(Path(path).stem)
    if not match:
        return None
    text = match["date"]
    try:
        date = dt.date.fromisoformat(text) if "-" in text else dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None
    return match["subject"], date


def read_subjects(path: Path) -> dict[str, tuple[str, dt.date]]:
    """path -> (subject, date) from a CSV with the columns path,subject,date; paths also absolute."""
    table: dict[str, tuple[str, dt.date]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "subject", "date"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: the subjects CSV needs the columns path,subject,date (missing {sorted(missing)})")
        for record in reader:
            entry = (record["subject"].strip(), dt.date.fromisoformat(record["date"].strip()))
            table[record["path"]] = entry
            table[os.path.abspath(record["path"])] = entry
            table[os.path.abspath(path.parent / record["path"])] = entry
    return table


# -- SVG charts --------------------------------------------------------------------------

def _nice_step(span: float, ticks: int = 6) -> float:
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def histogram_svg(rows: list[_Angle], threshold: float | None, width: int = 640, height: int = 240) -> str:
    """Angle histogram, 5-degree bins stacked by verdict, threshold as a dashed line."""
    angles = [r.angle_deg for r in rows if r.angle_deg is not None]
    lo_val = min(angles + ([threshold] if threshold is not None else []))
    hi_val = max(angles + ([threshold] if threshold is not None else []))
    bin_w = 5.0
    lo = math.floor(lo_val / bin_w) * bin_w - bin_w
    hi = math.ceil((hi_val + 1e-9) / bin_w) * bin_w + bin_w
    nbins = int(round((hi - lo) / bin_w))
    counts = [Counter() for _ in range(nbins)]
    for r in rows:
        if r.angle_deg is not None:
            counts[min(nbins - 1, int((r.angle_deg - lo) // bin_w))][r.verdict or "none"] += 1
    peak = max((sum(c.values()) for c in counts), default=1) or 1
    left, right, top, bottom = 44, 12, 22, 34
    pw, ph = width - left - right, height - top - bottom
    x = lambda v: left + (v - lo) / (hi - lo) * pw  # noqa: E731
    y = lambda n: top + ph - n / peak * ph  # noqa: E731
    out = [f'<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="angle histogram">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    ystep = max(1, int(_nice_step(peak, 4)))
    for n in range(0, peak + 1, ystep):
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(n):.1f}" y2="{y(n):.1f}" stroke="#e4e4e4"/>'
                   f'<text x="{left - 6}" y="{y(n) + 4:.1f}" font-size="11" text-anchor="end">{n}</text>')
    for i, c in enumerate(counts):
        base = 0
        for label in (*_ORDER, "none"):
            n = c.get(label, 0)
            if not n:
                continue
            x0, x1 = x(lo + i * bin_w), x(lo + (i + 1) * bin_w)
            out.append(f'<rect class="bar" data-bin="{lo + i * bin_w:g}" data-verdict="{label}" data-count="{n}" '
                       f'x="{x0 + 1:.1f}" y="{y(base + n):.1f}" width="{x1 - x0 - 2:.1f}" '
                       f'height="{y(base) - y(base + n):.1f}" fill="{_COLOURS.get(label, "#888")}">'
                       f'<title>{lo + i * bin_w:g} to {lo + (i + 1) * bin_w:g} deg: {n} {label}</title></rect>')
            base += n
    xstep = 10.0 if hi - lo <= 120 else 20.0
    tick = math.ceil(lo / xstep) * xstep
    while tick <= hi:
        out.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#555"/>'
                   f'<text x="{x(tick):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle">{tick:g}</text>')
        tick += xstep
    out.append(f'<text x="{left + pw / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
               f'dorsiflexion angle (deg)</text>')
    if threshold is not None:
        tx = x(threshold)
        out.append(f'<line class="threshold" data-deg="{threshold:g}" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top - 4}" '
                   f'y2="{top + ph}" stroke="#222" stroke-width="2" stroke-dasharray="5 3"/>'
                   f'<text x="{tx + 4:.1f}" y="{top - 8}" font-size="12">normal from {threshold:g} deg</text>')
    out.append("</svg>")
    return "".join(out)


def trend_svg(subject: str, points: list[tuple[dt.date, float]], threshold: float | None,
              width: int = 300, height: int = 150) -> str:
    """One person's angle over time: dots joined in date order, the threshold dashed."""
    points = sorted(points)
    values = [a for _, a in points] + ([threshold] if threshold is not None else [])
    lo, hi = min(values) - 5, max(values) + 5
    d0, d1 = points[0][0], points[-1][0]
    days = max(1, (d1 - d0).days)
    left, right, top, bottom = 34, 12, 20, 26
    pw, ph = width - left - right, height - top - bottom
    x = lambda d: left + ((d - d0).days / days * pw if d1 != d0 else pw / 2)  # noqa: E731
    y = lambda a: top + ph - (a - lo) / (hi - lo) * ph  # noqa: E731
    out = [f'<svg class="trend" data-subject="{html.escape(subject)}" xmlns="http://www.w3.org/2000/svg" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{html.escape(subject)} angle over time">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
           f'<text x="{left}" y="13" font-size="12" font-weight="bold">{html.escape(subject)}</text>']
    for v in (lo + 5, hi - 5):
        out.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.0f}</text>')
    if threshold is not None:
        out.append(f'<line class="threshold" x1="{left}" x2="{left + pw}" y1="{y(threshold):.1f}" '
                   f'y2="{y(threshold):.1f}" stroke="#222" stroke-dasharray="4 3"/>'
                   f'<text x="{left + pw - 2}" y="{y(threshold) - 3:.1f}" font-size="10" text-anchor="end" '
                   f'fill="#555">normal {threshold:g}</text>')
    if len(points) > 1:
        path = " ".join(f"{x(d):.1f},{y(a):.1f}" for d, a in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="#3465a4" stroke-width="2"/>')
    for d, a in points:
        out.append(f'<circle class="point" data-date="{d.isoformat()}" data-angle="{a:g}" cx="{x(d):.1f}" '
                   f'cy="{y(a):.1f}" r="3.5" fill="#3465a4"><title>{d.isoformat()}: {a:.1f} deg</title></circle>')
    out.append(f'<text x="{left}" y="{height - 6}" font-size="10">{d0.isoformat()}</text>')
    if d1 != d0:
        out.append(f'<text x="{left + pw}" y="{height - 6}" font-size="10" text-anchor="end">{d1.isoformat()}</text>')
    out.append("</svg>")
    return "".join(out)


# -- thumbnails --------------------------------------------------------------------------

def thumbnail(row: Row) -> str | None:
    """A data: URI of the photo with its overlay, drawn again from the row; None when it cannot be read."""
    if row.status == "error":
        return None
    try:
        with open(row.path, "rb") as fh:
            image = decode_image(fh.read(), max_side=THUMB_SIDE * 3)
        canvas = draw_overlay(image, row.to_result())
    except Exception:
        return None
    h, w = canvas.shape[:2]
    factor = THUMB_SIDE / max(h, w)
    small = cv2.resize(canvas, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else None


# -- the page ----------------------------------------------------------------------------

_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0], asc = th.dataset.dir !== 'asc';
    th.closest('tr').querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
    th.dataset.dir = asc ? 'asc' : 'desc';
    var num = th.dataset.type === 'num';
    Array.from(body.rows).sort(function (a, b) {
      var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      if (num) { x = x === '' ? Infinity : +x; y = y === '' ? Infinity : +y; return asc ? x - y : y - x; }
      return asc ? x.localeCompare(y) : y.localeCompare(x);
    }).forEach(function (r) { body.appendChild(r); });
  });
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; }
table.sortable th { cursor: pointer; background: #f2f2f2; user-select: none; }
table.sortable th[data-dir=asc]::after { content: ' \\25B2'; } table.sortable th[data-dir=desc]::after { content: ' \\25BC'; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.counts { display: flex; gap: 32px; flex-wrap: wrap; } .trends { display: flex; gap: 16px; flex-wrap: wrap; }
.v-normal { color: #2ea043; } .v-borderline { color: #b37400; } .v-restricted { color: #d73027; }
.v-test-mismatch { color: #965adc; }
.muted { color: #777; font-size: 13px; } img.thumb { display: block; }
"""


def _counts_table(title: str, counts: Counter, css: str) -> str:
    body = "".join(f'<tr><td>{html.escape(str(k))}</td><td class="num" data-value="{v}">{v}</td></tr>'
                   for k, v in counts.items())
    return f'<table class="{css}"><caption>{title}</caption><tbody>{body}</tbody></table>'


def _sample_indices(total: int, limit: int) -> set[int]:
    """Which rows (by position) the table shows: all, or ``limit`` evenly spread."""
    if total <= limit:
        return set(range(total))
    step = total / limit
    return {int(i * step) for i in range(limit)}


def build_report(rows: Iterable[Row] | Callable[[], Iterable[Row]],
                 subjects: dict[str, tuple[str, dt.date]] | None = None,
                 max_photos: int = 500, title: str = "toeangle batch report") -> str:
    """The page. ``rows`` may be a callable giving a fresh iteration (two passes over a results
    file, holding only a few numbers per photo and the table's rows in memory) or the rows themselves."""
    again = rows if callable(rows) else (lambda listed=list(rows): listed)
    by_status = Counter({k: 0 for k in ("ok", "unmeasurable", "error")})
    by_verdict = Counter({k: 0 for k in _ORDER if k != "test-mismatch"})  # shown when a photo has it
    by_grade: Counter = Counter()
    by_test: Counter = Counter()
    measured: dict[str, list[_Angle]] = defaultdict(list)
    people: dict[str, list[tuple[dt.date, float, float | None]]] = defaultdict(list)
    total = 0
    for r in again():
        total += 1
        by_status[r.status] += 1
        if r.test_and_fit:
            by_test[r.test_and_fit] += 1
        if r.verdict:
            by_verdict[r.verdict] += 1
            by_grade["none" if r.grade is None else f"grade {r.grade}"] += 1
        if r.angle_deg is None:
            continue
        measured[r.judged_by or r.protocol].append(_Angle(r.angle_deg, r.verdict, r.normal_min_deg))
        entry = None
        if subjects is not None:
            entry = subjects.get(r.path) or subjects.get(os.path.abspath(r.path))
        if entry is None:
            entry = subject_from_name(r.path)
        if entry is not None:
            people[entry[0]].append((entry[1], r.angle_deg, r.normal_min_deg))
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="muted">{total} photos; generated {dt.datetime.now().isoformat(timespec="seconds")}. '
             f"General guidance, not medical advice.</p>"]

    parts.append("<h2>Counts</h2><div class=\"counts\">")
    parts.append(_counts_table("by status", by_status, "counts-status"))
    parts.append(_counts_table("by verdict", by_verdict, "counts-verdict"))
    parts.append(_counts_table("by grade (Coughlin &amp; Shurnas)", Counter(dict(sorted(by_grade.items()))),
                               "counts-grade"))
    if by_test:
        parts.append(_counts_table("by test and posture fit", Counter(dict(sorted(by_test.items()))), "counts-test"))
    parts.append("</div>")

    parts.append("<h2>Angle distribution</h2>")
    if not measured:
        parts.append("<p>No photo was measured.</p>")
    for protocol in sorted(measured):
        group = measured[protocol]
        threshold = Counter(r.normal_min_deg for r in group if r.normal_min_deg is not None).most_common(1)
        parts.append(f'<h3>{html.escape(protocol)} ({len(group)} measured)</h3>')
        parts.append(histogram_svg(group, threshold[0][0] if threshold else None))
        legend = " ".join(f'<span class="v-{k}">&#9632; {k}</span>' for k in _ORDER)
        parts.append(f'<p class="muted">{legend}</p>')

    if people:
        parts.append("<h2>Per person over time</h2><div class=\"trends\">")
        for subject in sorted(people):
            pts = people[subject]
            thr = Counter(t for _, _, t in pts if t is not None).most_common(1)
            parts.append(trend_svg(subject, [(d, a) for d, a, _ in pts], thr[0][0] if thr else None))
        parts.append("</div>")

    wanted = _sample_indices(total, max_photos)
    shown = sorted((r for i, r in enumerate(again()) if i in wanted), key=lambda r: r.path)
    note = (f"all {total} photos" if len(shown) == total
            else f"{len(shown)} of {total} photos, evenly spread over the path order")
    parts.append(f"<h2>Photos</h2><p class=\"muted\">{note}; click a column to sort.</p>")
    head = ('<tr><th data-type="text">photo</th><th data-type="text">path</th><th data-type="text">status</th>'
            '<th data-type="num">angle (deg)</th><th data-type="text">verdict</th><th data-type="num">grade</th>'
            '<th data-type="text">test (posture fit)</th>'
            '<th data-type="text">reasons / error</th></tr>')
    body = []
    for r in shown:
        uri = thumbnail(r)
        img = f'<img class="thumb" alt="overlay" src="{uri}">' if uri else ""
        angle = "" if r.angle_deg is None else f"{r.angle_deg:.1f}"
        angle_value = "" if r.angle_deg is None else repr(r.angle_deg)
        why = html.escape(r.error or "; ".join(r.reasons))
        test = r.judged_by or ""
        if r.posture_fit:
            test += f" ({r.posture_fit}" + (f"; suggested {r.suggested_protocol})" if r.suggested_protocol else ")")
        body.append(
            f'<tr><td data-value="{html.escape(r.path)}">{img}</td>'
            f'<td data-value="{html.escape(r.path)}">{html.escape(r.path)}</td>'
            f'<td data-value="{r.status}">{r.status}</td>'
            f'<td class="num angle" data-value="{angle_value}">{angle}</td>'
            f'<td data-value="{r.verdict or ""}" class="v-{r.verdict or "none"}">{r.verdict or ""}</td>'
            f'<td class="num" data-value="{"" if r.grade is None else r.grade}">{"" if r.grade is None else r.grade}</td>'
            f'<td data-value="{html.escape(test)}">{html.escape(test)}</td>'
            f'<td data-value="{why}">{why}</td></tr>')
    parts.append(f'<table id="photos" class="sortable"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>')

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(parts) + f"<script>{_SCRIPT}</script></body></html>\n")


def write_report(results: Path, out: Path, subjects: Path | None = None, max_photos: int = 500) -> None:
    table = read_subjects(subjects) if subjects is not None else None
    page = build_report(lambda: read_rows(results), table, max_photos=max_photos,
                        title=f"toeangle batch report: {results.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8", errors="replace")  # a file name that is not UTF-8 shows as "?"
    os.replace(tmp, out)
