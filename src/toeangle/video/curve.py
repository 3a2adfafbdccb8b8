"""Per-frame angles -> a smooth curve: local quadratic regression in time, made robust to outliers.

Why this filter: it is symmetric in time, so it does not lag (a One Euro or Kalman filter runs
forward and trails a fast rise), and a quadratic follows a peak's curvature instead of flattening
it as a moving average does. It works on the frames' own timestamps, so gaps (frames the gate
refused) and variable frame rates need no resampling: a gap stays a gap, never a zero. One
robustness pass (bisquare weights on the residuals, as LOWESS) keeps a single misread frame from
pulling its neighbours.
"""

from __future__ import annotations

import numpy as np

HALF_WINDOW_S = 0.15
"""Half-width of the fitting window: a heel raise's peak lasts half a second or more, a walking
push-off a few tenths; at 30 frames/s the window holds 9 frames."""
MIN_FRAMES_EACH_SIDE = 3
"""The window widens at low frame rates to hold at least this many frames on each side."""
ROBUST_SCALE = 6.0
"""Residuals beyond this many median absolute residuals get no weight (Cleveland 1979)."""


def smooth(times_s: np.ndarray, values: np.ndarray, half_window_s: float = HALF_WINDOW_S) -> np.ndarray:
    """The smoothed value at every frame that has a value; NaN where ``values`` is NaN (gaps)."""
    t, y = np.asarray(times_s, float), np.asarray(values, float)
    out = np.full_like(y, np.nan)
    have = np.flatnonzero(np.isfinite(y))
    if len(have) < 3:
        out[have] = y[have]
        return out
    tt, yy = t[have], y[have]
    step = float(np.median(np.diff(tt))) if len(tt) > 1 else 0.0
    half = max(half_window_s, (MIN_FRAMES_EACH_SIDE + 0.5) * step)
    robust = np.ones_like(yy)
    for _ in range(3):
        fitted = np.array([_local_fit(tt, yy, robust, centre, half) for centre in tt])
        residual = yy - fitted
        scale = np.median(np.abs(residual)) * ROBUST_SCALE
        if scale <= 1e-9:
            break
        robust = np.clip(1 - (residual / scale) ** 2, 0, None) ** 2
    out[have] = fitted
    return out


def _local_fit(t: np.ndarray, y: np.ndarray, robust: np.ndarray, centre: float, half: float) -> float:
    near = np.abs(t - centre) < half
    d = (t[near] - centre) / half
    w = (1 - np.abs(d) ** 3) ** 3 * robust[near]
    if np.count_nonzero(w > 1e-6) < 3:  # too few trusted frames nearby for a curve: their median
        return float(np.median(y[near]))
    design = np.stack([np.ones_like(d), d, d * d], 1) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(design, y[near] * np.sqrt(w), rcond=None)
    return float(coef[0])


def scatter(values: np.ndarray, smoothed: np.ndarray) -> float:
    """How far single frames stray from the curve (robust standard deviation, degrees; 0 without frames)."""
    residual = np.asarray(values, float) - np.asarray(smoothed, float)
    residual = residual[np.isfinite(residual)]
    return float(1.4826 * np.median(np.abs(residual))) if len(residual) else 0.0
