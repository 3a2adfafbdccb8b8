"""Skin markers: round green stickers on the landmarks, found with OpenCV.

Green because skin of every tone sits at red-orange hues and green is farthest from it;
ordinary office dot stickers (8-20 mm) work. Place them on the inner side of the foot:
first_metatarsal (middle of the first metatarsal shaft), first_mtp (the big-toe joint),
hallux_ip (the joint in the middle of the big toe) and, if you can, heel (the back of the
heel). Their order along the foot is found from the geometry, not from colours:
the segments heel -> metatarsal -> MTP -> IP get shorter (about 47%, 25% and 14% of
foot length), so the path through them starts at its longest segment.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from ..decode import DecodedImage
from ..schema import Detection, Landmarks, Point, Quality, Reason
from .base import to_original

HUE_RANGE = (35, 90)
"""OpenCV hue (0..180) band counted as sticker green."""
MIN_SATURATION = 90
MIN_VALUE = 50
MIN_CIRCULARITY = 0.6
CENTROID_SIGMA_PX = 0.5
"""Centroid error of a sticker in decoded pixels, measured on drawn markers (tests/test_markers.py)."""

ORDER_NAMES = {
    3: ("first_metatarsal", "first_mtp", "hallux_ip"),
    4: ("heel", "first_metatarsal", "first_mtp", "hallux_ip"),
}


def _green_weight(hsv: np.ndarray) -> np.ndarray:
    """Soft 0..1 membership: anti-aliased sticker edges count partly, which makes centroids sub-pixel."""
    h, s, v = (hsv[..., i].astype(np.float32) for i in range(3))
    lo, hi = HUE_RANGE
    hue = np.clip(np.minimum(h - lo, hi - h) / 5.0, 0.0, 1.0)
    sat = np.clip((s - MIN_SATURATION * 0.5) / MIN_SATURATION, 0.0, 1.0)
    val = np.clip((v - MIN_VALUE * 0.5) / MIN_VALUE, 0.0, 1.0)
    return hue * sat * val


def find_blobs(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Round green blobs as (x, y, area, circularity), with sub-pixel weighted centroids."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    weight = _green_weight(hsv)
    mask = (weight > 0.5).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    min_area = max(12.0, 2e-5 * mask.size)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    blobs = []
    for contour in contours:
        area = cv2.contourArea(contour)
        perimeter = cv2.arcLength(contour, True)
        if area < min_area or perimeter == 0:
            continue
        circularity = 4 * np.pi * area / perimeter**2
        if circularity < MIN_CIRCULARITY:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        pad = 2
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(rgb.shape[1], x + w + pad), min(rgb.shape[0], y + h + pad)
        region = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(region, [contour - [x0, y0]], -1, 1, thickness=cv2.FILLED)
        region = cv2.dilate(region, np.ones((5, 5), np.uint8))
        wgt = weight[y0:y1, x0:x1] * region
        total = wgt.sum()
        ys, xs = np.mgrid[y0:y1, x0:x1]
        blobs.append((float((wgt * xs).sum() / total), float((wgt * ys).sum() / total), area, circularity))
    return blobs


def _order_along_foot(points: np.ndarray) -> np.ndarray:
    """The shortest path through the markers, started at its longest segment (the heel end)."""
    best, best_len = None, np.inf
    for perm in itertools.permutations(range(len(points))):
        if perm[0] > perm[-1]:
            continue  # a path and its reverse have the same length
        length = np.sum(np.linalg.norm(np.diff(points[list(perm)], axis=0), axis=1))
        if length < best_len:
            best, best_len = list(perm), length
    path = points[best]
    segments = np.linalg.norm(np.diff(path, axis=0), axis=1)
    return path if segments[0] >= segments[-1] else path[::-1]


class MarkerDetector:
    """Three or four green stickers -> landmarks; anything else is refused with the count seen."""

    name = "markers"

    def detect(self, image: DecodedImage) -> Detection:
        blobs = find_blobs(image.rgb)
        if len(blobs) > 4:
            # Keep the stickers: blobs of similar size to the largest ones, clutter aside.
            blobs.sort(key=lambda b: b[2], reverse=True)
            typical = np.median([b[2] for b in blobs[:4]])
            blobs = [b for b in blobs if 0.4 * typical <= b[2] <= 2.5 * typical]
        if len(blobs) not in ORDER_NAMES:
            return Detection(
                landmarks=Landmarks(), detector=self.name,
                quality=Quality.refuse(Reason("markers_not_found",
                                              f"skin markers: found {len(blobs)} green stickers, need 3 or 4")),
            )
        ordered = _order_along_foot(np.array([(b[0], b[1]) for b in blobs]))
        confidence = {(b[0], b[1]): min(1.0, b[3]) for b in blobs}
        points = {
            name: Point(x=float(x), y=float(y), confidence=round(confidence[(x, y)], 3), sigma_px=CENTROID_SIGMA_PX)
            for name, (x, y) in zip(ORDER_NAMES[len(blobs)], ordered)
        }
        return Detection(landmarks=to_original(Landmarks(**points), image), detector=self.name, quality=Quality.ok())
