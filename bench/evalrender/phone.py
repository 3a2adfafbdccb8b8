"""A phone's image pipeline on linear radiance: exposure, vignetting, sensor noise, white balance,
tone curve with local (HDR) compression, denoising, sharpening, chromatic aberration, JPEG."""

from __future__ import annotations

import cv2
import numpy as np


def develop(radiance: np.ndarray, rng: np.random.Generator, light_level: float, lens: str) -> tuple[np.ndarray, dict]:
    """Linear RGB radiance [h, w, 3] -> the JPEG bytes a phone would save, and what it did."""
    h, w = radiance.shape[:2]
    x = radiance.astype(np.float32)
    # auto exposure on the centre of the frame, with the meter's own bias
    centre = x[h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean(2)
    bias = 2 ** rng.normal(0, 0.35)
    x *= 0.2 * bias / max(float(np.percentile(centre, 55)), 1e-4)
    # vignetting the phone only partly corrects
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = (((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)).astype(np.float32)
    x *= (1 - rng.uniform(0.05, 0.3 if lens == "ultrawide" else 0.18) * r2)[..., None]
    # sensor noise: shot noise grows as the light falls (higher ISO), plus read noise
    iso_gain = float(np.clip(0.6 / max(light_level, 1e-3), 0.3, 12.0)) * rng.uniform(0.7, 1.3)
    shot = np.sqrt(np.clip(x, 0, None) * 0.004 * iso_gain)
    x = x + shot * rng.standard_normal(x.shape).astype(np.float32)
    x = x + 0.002 * iso_gain * rng.standard_normal(x.shape).astype(np.float32)
    # white balance: grey world, mostly applied (tungsten stays a little warm)
    grey = np.clip(x.reshape(-1, 3).mean(0), 1e-4, None)
    x *= (grey.mean() / grey) ** rng.uniform(0.15, 0.5)
    # local tone mapping: lift shadows and hold highlights against the blurred luminance
    lum = np.clip(x.mean(2), 1e-4, None)
    base = cv2.GaussianBlur(lum, (0, 0), max(h, w) / 30)
    x *= ((np.clip(base, 1e-4, None) / 0.18) ** (-rng.uniform(0.1, 0.4)))[..., None]
    # filmic curve, then sRGB gamma
    x = np.clip(x, 0, None)
    x = x * (2.51 * x + 0.03) / (x * (2.43 * x + 0.59) + 0.14)
    x = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.clip(x, 0.0031308, None), 1 / 2.4) - 0.055)
    img = np.clip(x * 255, 0, 255).astype(np.uint8)
    # chroma denoise (the blotchy look of phone noise reduction), then sharpening with halos
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    k = int(2 * round(rng.uniform(1, 2.5) * min(iso_gain, 4) / 2) + 1)
    ycc[..., 1:] = cv2.GaussianBlur(ycc[..., 1:], (k, k), 0)
    if iso_gain > 2:
        ycc[..., 0] = cv2.bilateralFilter(ycc[..., 0], 5, 8 * iso_gain, 3)
    img = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB).astype(np.float32)
    amount, radius = rng.uniform(0.3, 1.3), rng.uniform(0.8, 2.0)
    img = img + amount * (img - cv2.GaussianBlur(img, (0, 0), radius))
    if lens == "ultrawide" or rng.random() < 0.3:  # lateral chromatic aberration: red and blue at other scales
        shift = rng.uniform(0.0005, 0.002)
        for c, s in ((0, 1 + shift), (2, 1 - shift)):
            m = cv2.getRotationMatrix2D((w / 2, h / 2), 0, s)
            img[..., c] = cv2.warpAffine(img[..., c], m, (w, h), borderMode=cv2.BORDER_REFLECT)
    img = np.clip(img, 0, 255).astype(np.uint8)
    quality = int(rng.integers(72, 96))
    data = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
    return data, {"iso_gain": round(iso_gain, 2), "jpeg_quality": quality, "sharpen": round(amount, 2)}
