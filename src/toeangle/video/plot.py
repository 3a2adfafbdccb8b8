"""VideoResult -> the curve as an SVG plot: every frame's angle, the smoothed curve, the gaps, the
protocol's threshold, and the movement (the peak, or each push-off) marked.

Written by hand (a few dozen elements): a plotting library would add tens of megabytes to the image
for one chart. Text is escaped; nothing from the clip but numbers reaches the SVG.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np

from ..schema import VideoResult

WIDTH, HEIGHT = 720, 360
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 40, 48
COLOURS = {"normal": "#2ea043", "borderline": "#e6a014", "restricted": "#d73027", None: "#555555"}


def plot_svg(result: VideoResult, normal_min_deg: float | None = None) -> str:
    frames = result.frames
    t = np.array([f.time_s for f in frames])
    raw = np.array([np.nan if f.angle_deg is None else f.angle_deg for f in frames])
    smooth = np.array([np.nan if f.smoothed_deg is None else f.smoothed_deg for f in frames])
    threshold = result.verdict.normal_min_deg if result.verdict else normal_min_deg
    values = [v for v in (*raw[np.isfinite(raw)], threshold) if v is not None]
    lo = min([0.0, *values]) - 5
    hi = max([60.0, *values]) + 10
    t0, t1 = (float(t.min()), float(t.max())) if len(t) else (0.0, 1.0)
    t1 = t1 if t1 > t0 else t0 + 1

    def x(v):
        return LEFT + (v - t0) / (t1 - t0) * (WIDTH - LEFT - RIGHT)

    def y(v):
        return TOP + (hi - v) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    label = result.verdict.label if result.verdict else None
    colour = COLOURS[label]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
           'font-family="sans-serif" font-size="15" role="img">',
           f'<title>{escape(_title(result))}</title>', f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.03
    for run in _runs(np.array([bool(f.heel_off) for f in frames])):  # heel off the floor (heel raise): shaded
        x0, x1 = x(t[run[0]] - step / 2), x(t[run[-1]] + step / 2)
        out.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" height="{HEIGHT - TOP - BOTTOM}" '
                   f'fill="#dbe9f6" stroke="none"/><text x="{(x0 + x1) / 2:.1f}" y="{HEIGHT - BOTTOM - 10}" text-anchor="middle" '
                   'fill="#4a6a8c">heel off the floor</text>')
    for v in _ticks(lo, hi):
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for v in _ticks(t0, t1):
        out.append(f'<text x="{x(v):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{v:g}</text>')
    out.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">time (s)</text>'
               f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">'
               'dorsiflexion (deg)</text>')
    for i, f in enumerate(frames):  # gaps: frames the gate refused, as ticks on the time axis
        if f.status != "ok":
            out.append(f'<line x1="{x(t[i]):.1f}" x2="{x(t[i]):.1f}" y1="{HEIGHT - BOTTOM - 6}" y2="{HEIGHT - BOTTOM}" '
                       'stroke="#d73027"/>')
    if threshold is not None:
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" '
                   f'stroke="#888" stroke-dasharray="6 4"/><text x="{WIDTH - RIGHT - 4}" y="{y(threshold) - 5:.1f}" '
                   f'text-anchor="end" fill="#555">normal from {threshold:g} deg</text>')
    for i in np.flatnonzero(np.isfinite(raw)):
        out.append(f'<circle cx="{x(t[i]):.1f}" cy="{y(raw[i]):.1f}" r="2" fill="#999"/>')
    for run in _runs(np.isfinite(smooth)):
        points = " ".join(f"{x(t[i]):.1f},{y(smooth[i]):.1f}" for i in run)
        out.append(f'<polyline points="{points}" fill="none" stroke="#1f4e8c" stroke-width="2"/>')
    movement = result.movement
    if movement is not None:
        marks = [(s.time_s, s.angle_deg) for s in movement.steps] or [(movement.key_time_s, movement.angle_deg)]
        for time_s, angle in marks:
            out.append(f'<circle cx="{x(time_s):.1f}" cy="{y(angle):.1f}" r="6" fill="none" stroke="{colour}" '
                       'stroke-width="2.5"/>')
        text = f"{movement.angle_deg:.0f} deg at {movement.key_time_s:.2f} s (frame {movement.key_frame})"
        if movement.steps:
            text = f"push-off {movement.angle_deg:.0f} deg" + (f" +/- {movement.spread_deg:.0f}" if movement.spread_deg
                                                               else "") + f" over {len(movement.steps)} steps"
        anchor = "end" if x(movement.key_time_s) > WIDTH / 2 else "start"
        dx = -10 if anchor == "end" else 10
        out.append(f'<text x="{x(movement.key_time_s) + dx:.1f}" y="{y(movement.angle_deg) - 10:.1f}" '
                   f'text-anchor="{anchor}" fill="{colour}" font-weight="bold">{escape(text)}</text>')
    out.append(f'<text x="{LEFT}" y="{TOP - 14}" font-size="17" font-weight="bold">{escape(_title(result))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _title(result: VideoResult) -> str:
    protocol = result.options.protocol.replace("_", " ")
    if result.status != "ok":
        return f"{protocol}: unmeasurable"
    return f"{protocol}: {result.verdict.label}"


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = next(s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 600, 1e9) if span / s <= 8)
    return [round(v, 6) + 0.0 for v in np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)]


def _runs(mask: np.ndarray) -> list[list[int]]:
    """Indices of each stretch of consecutive True values: the curve is drawn in pieces, broken at gaps."""
    runs, current = [], []
    for i, ok in enumerate(mask):
        if ok:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    return runs + [current] if current else runs
