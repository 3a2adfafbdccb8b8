"""Skin markers: round green stickers on the landmarks, found with OpenCV, accepted only on a foot.

Green because skin of every tone sits at red-orange hues and green is farthest from it;
ordinary office dot stickers (8-20 mm) work. Place them on the inner side of the foot:
first_metatarsal (middle of the first metatarsal shaft), first_mtp (the big-toe joint),
hallux_ip (the joint in the middle of the big toe) and, if you can, heel (the back of the
heel). Their order along the foot is found from the geometry, not from colours:
the segments heel -> metatarsal -> MTP -> IP get shorter (about 47%, 25% and 12% of
foot length), so the path through them starts at its longest segment.

Green things that are not stickers are everywhere (tiles, treadmills, plants, socks), and a
wrong sticker is worse than none: it turns into a confident number. So a green spot counts
only when it is one of a set that is round (an ellipse: a disc seen on a curved foot), of one
size, with skin around each sticker, in the order and proportions of a foot, and on the foot
that the keypoint model's first stage finds in the photo. Anything else is refused with the
reason, and `auto` goes on to the keypoint model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..decode import DecodedImage
from ..geometry import GeometryError, dorsiflexion_deg
from ..schema import Detection, Landmarks, Point, Quality, Reason
from .base import to_decoded, to_original

HUE_RANGE = (35, 90)
"""OpenCV hue (0..180) band counted as sticker green."""
MIN_SATURATION = 90
MIN_VALUE = 50
MAX_OUTLINE_SPREAD = 0.06
"""Spread (std) of the outline's distance from its fitted ellipse, in ellipse radii, beyond
pixel steps: a drawn disc reads under 0.03, a square 0.09 and more."""
MIN_AXIS_RATIO = 0.4
"""Minor/major axis of a sticker: a disc turned up to about 65 degrees away from the camera."""
MAX_SIZE_RATIO = 1.5
"""Largest over smallest sticker (major axes): one sticker size, near and far sides of the foot."""
MIN_SKIN_SHARE = 0.3
"""Share of skin-coloured pixels in a ring around each forefoot sticker (the toe is narrow)."""
MIN_HEEL_SKIN_SHARE = 0.15
"""The same for the heel's sticker: on the back of the heel, background fills much of its ring."""
SKIN_RING = (1.3, 2.0)
"""The ring around a sticker where skin is looked for, in sticker radii (clear of JPEG halos)."""
SEGMENT_RATIOS = {"metatarsal/heel": (0.3, 0.9), "phalanx/metatarsal": (0.25, 0.95)}
"""Ratios of the segments metatarsal->MTP over heel->metatarsal and MTP->IP over metatarsal->MTP:
FIND reads about 0.55 and 0.5 side-on; the bounds admit views 30 degrees off and sloppy placement."""
MAX_HEEL_TURN_DEG = 75.0
"""The path heel -> metatarsal -> MTP bends at the metatarsal by about 40 degrees side-on."""
ANGLE_RANGE_DEG = (-45.0, 120.0)
"""Dorsiflexion angles a big toe can show."""
STICKER_PER_METATARSAL = (0.05, 0.6)
"""Sticker diameter over the metatarsal segment: 8-20 mm stickers on a 45-90 mm segment."""
FOOT_MARGIN = 0.3
"""How far (in foot lengths) a sticker may lie from stage 1's point for the same landmark: stage 1
is coarse on real photos (it may put its points along the sole). The foot length is the longer of
stage 1's (short when it misses the toe) and the stickers' (METATARSAL_SHARE)."""
FOOT_SCALE_RANGE = (0.4, 2.5)
"""Foot length from the stickers (METATARSAL_SHARE) over stage 1's heel -> toe-tip path; wide, because
stage 1 bunches its points up on feet seen from above."""
CENTROID_SIGMA_PX = 0.5
"""Centroid error of a sticker in decoded pixels, measured on drawn markers (bench/markers.py)."""
PLACEMENT_SIGMA_MM = 1.1
"""How far a sticker lands from its landmark when placed again (1 sigma per axis): a mean 1.4 mm
for repeat placement of skin markers on the foot by a podiatrist (Telfer et al., Gait & Posture),
1.4 / sqrt(pi / 2) per axis. Someone placing stickers on their own foot does worse, not better."""
METATARSAL_SHARE = 0.25
"""first_metatarsal -> first_mtp in foot lengths (FIND: at 47% and 72% of the foot)."""
METATARSAL_MM = METATARSAL_SHARE * 260.0
"""The same on an adult foot of 260 mm: turns millimetres into pixels."""
MAX_CANDIDATES = 10
"""Round green spots tried as sticker sets, largest first (combinations grow fast)."""

MAX_FOLLOW_MOVE = 0.25
"""Clips: how far (metatarsal lengths) a sticker may move from one frame to the next and still be the same one
on the same foot."""
ORDER_NAMES = {
    3: ("first_metatarsal", "first_mtp", "hallux_ip"),
    4: ("heel", "first_metatarsal", "first_mtp", "hallux_ip"),
}


@dataclass(frozen=True)
class Spot:
    """A round green blob: a sticker candidate."""

    x: float
    y: float
    radius: float  # semi-major axis, decoded pixels
    roundness: float  # 1 for a clean ellipse, falling with the outline's spread
    skin: float = 0.0  # share of skin-coloured pixels in the ring around it

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])


class FootFinder:
    """Where the keypoint model's first stage puts the foot: its five points, or None without a foot.

    ``locate`` is KeypointModel.locate (photo -> Stage1 with ``points`` and ``presence``).
    """

    def __init__(self, locate: Callable, min_presence: float):
        self.locate = locate
        self.min_presence = min_presence

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        stage1 = self.locate(rgb)
        return stage1.points if stage1.presence >= self.min_presence else None


def _green_weight(hsv: np.ndarray) -> np.ndarray:
    """Soft 0..1 membership: anti-aliased sticker edges count partly, which makes centroids sub-pixel."""
    h, s, v = (hsv[..., i].astype(np.float32) for i in range(3))
    lo, hi = HUE_RANGE
    hue = np.clip(np.minimum(h - lo, hi - h) / 5.0, 0.0, 1.0)
    sat = np.clip((s - MIN_SATURATION * 0.5) / MIN_SATURATION, 0.0, 1.0)
    val = np.clip((v - MIN_VALUE * 0.5) / MIN_VALUE, 0.0, 1.0)
    return hue * sat * val


def skin_mask(hsv: np.ndarray) -> np.ndarray:
    """Skin of any tone, lit or shaded: red-orange hues, some colour, not black. Pale skin in bright light
    is as grey as white paper in warm light, and a wooden floor or a beige wall is skin-coloured:
    colour says where a sticker is not on skin, stage 1 says where the foot is."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return ((h <= 25) | (h >= 170)) & (s >= 20) & (s <= 235) & (v >= 20)


def _outline_spread(contour: np.ndarray, ellipse) -> float:
    """Std of the outline's normalised elliptical radius (0 on a perfect ellipse)."""
    (cx, cy), (w, h), angle = ellipse
    t = np.radians(angle)
    d = contour.reshape(-1, 2).astype(np.float64) - (cx, cy)
    u = d[:, 0] * np.cos(t) + d[:, 1] * np.sin(t)
    v = -d[:, 0] * np.sin(t) + d[:, 1] * np.cos(t)
    return float(np.std(np.hypot(u / (w / 2), v / (h / 2))))


def find_blobs(rgb: np.ndarray) -> list[Spot]:
    """Round green blobs (ellipses), with sub-pixel weighted centroids and the skin around them."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    weight = _green_weight(hsv)
    mask = (weight > 0.5).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    min_area = max(12.0, 2e-5 * mask.size)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    skin = None
    spots = []
    for contour in contours:
        if cv2.contourArea(contour) < min_area or len(contour) < 5:
            continue
        ellipse = cv2.fitEllipse(contour)
        minor, major = sorted(ellipse[1])
        if major <= 0 or minor / major < MIN_AXIS_RATIO:
            continue
        spread = _outline_spread(contour, ellipse)
        if spread > MAX_OUTLINE_SPREAD + 0.35 / minor:  # the second term: pixel steps of a small outline
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
        cx, cy = float((wgt * xs).sum() / total), float((wgt * ys).sum() / total)
        if skin is None:
            skin = skin_mask(hsv)
        spots.append(Spot(x=cx, y=cy, radius=major / 2, roundness=max(0.0, 1.0 - spread / MAX_OUTLINE_SPREAD / 2),
                          skin=_ring_share(skin, cx, cy, major / 2)))
    return spots


def _ring_share(skin: np.ndarray, x: float, y: float, radius: float) -> float:
    """Share of skin pixels in the ring SKIN_RING around (x, y), counting only the part inside the photo."""
    outer = SKIN_RING[1] * radius
    x0, y0 = max(0, int(x - outer)), max(0, int(y - outer))
    x1, y1 = min(skin.shape[1], int(x + outer) + 2), min(skin.shape[0], int(y + outer) + 2)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    r = np.hypot(xs - x, ys - y)
    ring = (r >= SKIN_RING[0] * radius) & (r <= outer)
    return float(skin[y0:y1, x0:x1][ring].mean()) if ring.any() else 0.0


def _order_along_foot(points: np.ndarray) -> np.ndarray:
    """Indices of the shortest path through the markers, started at its longest segment (the heel end)."""
    best, best_len = None, np.inf
    for perm in itertools.permutations(range(len(points))):
        if perm[0] > perm[-1]:
            continue  # a path and its reverse have the same length
        length = np.sum(np.linalg.norm(np.diff(points[list(perm)], axis=0), axis=1))
        if length < best_len:
            best, best_len = list(perm), length
    segments = np.linalg.norm(np.diff(points[best], axis=0), axis=1)
    return np.array(best if segments[0] >= segments[-1] else best[::-1])


def _foot_shape_problem(path: np.ndarray, radius: float) -> str | None:
    """Why stickers at ``path`` (heel or metatarsal first) cannot be on a foot, or None when they can."""
    segments = np.linalg.norm(np.diff(path, axis=0), axis=1)
    metatarsal, phalanx = segments[-2], segments[-1]
    ratios = {"phalanx/metatarsal": phalanx / metatarsal}
    if len(path) == 4:
        ratios["metatarsal/heel"] = metatarsal / segments[0]
    for name, ratio in ratios.items():
        lo, hi = SEGMENT_RATIOS[name]
        if not lo <= ratio <= hi:
            return f"segment ratio {name} is {ratio:.2f}, a foot's lies within {lo}-{hi}"
    lo, hi = STICKER_PER_METATARSAL
    if not lo <= 2 * radius / metatarsal <= hi:
        return f"stickers {2 * radius:.0f} px across do not fit a metatarsal segment {metatarsal:.0f} px long"
    if len(path) == 4:
        turn = np.degrees(np.arccos(np.clip(
            np.dot(path[1] - path[0], path[2] - path[1]) / (segments[0] * segments[1]), -1, 1)))
        if turn > MAX_HEEL_TURN_DEG:
            return f"the heel sticker is {turn:.0f} degrees off the metatarsal's line (a foot: under {MAX_HEEL_TURN_DEG:.0f})"
        try:
            angle = float(dorsiflexion_deg(*path))
        except GeometryError as exc:
            return str(exc)
        lo, hi = ANGLE_RANGE_DEG
        if not lo <= angle <= hi:
            return f"they would make a toe angle of {angle:.0f} degrees (a toe: {lo:.0f} to {hi:.0f})"
    return None


def _off_foot_problem(path: np.ndarray, foot: np.ndarray) -> str | None:
    """Why stickers at ``path`` are not on the foot whose five landmarks stage 1 gives, or None.

    Each sticker must lie near stage 1's point for the same landmark, and the foot the stickers
    span must be about as long as stage 1's.
    """
    stickers_foot = float(np.linalg.norm(path[-2] - path[-3])) / METATARSAL_SHARE
    model_foot = float(np.sum(np.linalg.norm(np.diff(foot, axis=0), axis=1)))
    same = foot[:4] if len(path) == 4 else foot[1:4]  # stage 1's heel, metatarsal, MTP, IP
    names = ORDER_NAMES[len(path)]
    off = np.linalg.norm(path - same, axis=1) / max(stickers_foot, model_foot)
    worst = int(np.argmax(off))
    if off[worst] > FOOT_MARGIN:
        return (f"the {names[worst]} sticker lies {off[worst]:.2f} foot lengths from where the foot found "
                "in the photo has that point")
    scale = stickers_foot / max(model_foot, 1e-9)
    lo, hi = FOOT_SCALE_RANGE
    if not lo <= scale <= hi:
        return f"they make a foot {scale:.1f} times as long as the foot found in the photo"
    return None


def _lookalikes(chosen: list[Spot], spots: list[Spot]) -> int:
    """Round green spots of the chosen stickers' size within a foot length of them, besides them: with
    one more, which are the stickers is a guess (a dotted sock, paper or tiles can pass for a foot's)."""
    radius = float(np.median([s.radius for s in chosen]))
    foot = float(np.linalg.norm(chosen[-2].xy - chosen[-3].xy)) / METATARSAL_SHARE
    return sum(1 for s in spots if s not in chosen and radius / MAX_SIZE_RATIO <= s.radius <= radius * MAX_SIZE_RATIO
               and min(np.linalg.norm(s.xy - c.xy) for c in chosen) <= foot)


class MarkerDetector:
    """Three or four green stickers on a foot -> landmarks; anything else is refused with the reason."""

    name = "markers"

    def __init__(self, foot_finder: Callable[[np.ndarray], np.ndarray | None]):
        """``foot_finder``: photo -> stage 1's five landmark points, or None when it sees no foot (FootFinder)."""
        self.foot_finder = foot_finder

    def detect(self, image: DecodedImage) -> Detection:
        spots = find_blobs(image.rgb)
        chosen, problem = self._choose(spots)
        if chosen is None:
            return self._refuse("markers_not_found", problem)
        path = np.array([s.xy for s in chosen])
        problem = self._off_foot_problem(image.rgb, path)
        if problem:
            return self._refuse("markers_off_foot", problem)
        return self._found(chosen, image)

    def follow(self, image: DecodedImage, previous: Landmarks) -> Detection:
        """Stickers in a clip's next frame. Whether they are on a foot (stage 1 on the whole frame, most
        of the cost) was checked when they were found; here it is taken over from ``previous`` (the last
        frame's landmarks) when every sticker lies within MAX_FOLLOW_MOVE metatarsal lengths of the same
        one there. Otherwise the frame gets ``detect``'s full check."""
        chosen, problem = self._choose(find_blobs(image.rgb))
        if chosen is None:
            return self._refuse("markers_not_found", problem)
        names = ORDER_NAMES[len(chosen)]
        before = to_decoded(previous, image).present()
        if all(n in before for n in names):
            path, old = np.array([s.xy for s in chosen]), np.array([before[n].xy for n in names])
            metatarsal = float(np.linalg.norm(old[-2] - old[-3]))
            if np.linalg.norm(path - old, axis=1).max() <= MAX_FOLLOW_MOVE * metatarsal:
                return self._found(chosen, image)
        return self.detect(image)

    def _found(self, chosen: list[Spot], image: DecodedImage) -> Detection:
        path = np.array([s.xy for s in chosen])
        metatarsal_px = float(np.linalg.norm(path[-2] - path[-3]))
        sigma = float(np.hypot(CENTROID_SIGMA_PX, PLACEMENT_SIGMA_MM / METATARSAL_MM * metatarsal_px))
        points = {
            name: Point(x=s.x, y=s.y, confidence=round(min(s.roundness, 1.0), 3), sigma_px=round(sigma, 3))
            for name, s in zip(ORDER_NAMES[len(chosen)], chosen)
        }
        return Detection(landmarks=to_original(Landmarks(**points), image), detector=self.name, quality=Quality.ok())

    def _off_foot_problem(self, rgb: np.ndarray, path: np.ndarray) -> str | None:
        """Why the stickers at ``path`` are not on the foot stage 1 finds, or None when they are.

        Stage 1 reads every quarter turn and mirror image of the photo itself, so a foot on its side
        needs no turning here."""
        foot = self.foot_finder(rgb)
        if foot is None:
            return "no foot was found under the green stickers"
        reason = _off_foot_problem(path, foot)
        return None if reason is None else f"the green spots are not on the foot: {reason}"

    def _refuse(self, code: str, reason: str) -> Detection:
        return Detection(landmarks=Landmarks(), detector=self.name,
                         quality=Quality.refuse(Reason(code, f"skin markers: {reason}")))

    @staticmethod
    def _choose(spots: list[Spot]) -> tuple[list[Spot] | None, str]:
        """The set of 4 (else 3) spots, in foot order, that can be stickers on a foot, else why none can.

        Sets are judged by size and geometry first, then by the skin around them: a set of four whose
        heel sticker lacks skin is refused, not read as three stickers with the heel's as a metatarsal's.
        """
        if len(spots) < 3:
            return None, f"found {len(spots)} green stickers, need 3 or 4"
        candidates = sorted(spots, key=lambda s: s.radius, reverse=True)[:MAX_CANDIDATES]
        problem = f"found {len(spots)} round green spots, but they are not of one size"
        four_problem = None
        for count in (4, 3):
            best, best_spread, shaped = None, np.inf, False
            for subset in itertools.combinations(candidates, count):
                radii = [s.radius for s in subset]
                spread = max(radii) / min(radii)
                if spread > MAX_SIZE_RATIO:
                    continue
                ordered = [subset[i] for i in _order_along_foot(np.array([s.xy for s in subset]))]
                reason = _foot_shape_problem(np.array([s.xy for s in ordered]), float(np.median(radii)))
                if reason:
                    if not shaped:
                        problem = (f"found {len(spots)} round green spots, but they are not placed like heel, "
                                   f"metatarsal, big-toe joint and toe joint ({reason})")
                    continue
                shaped = True
                bare = [(name, s.skin) for name, s in zip(ORDER_NAMES[count], ordered)
                        if s.skin < (MIN_HEEL_SKIN_SHARE if name == "heel" else MIN_SKIN_SHARE)]
                if bare:
                    name, share = bare[0]
                    problem = (f"the green spot that would be the {name} sticker has too little skin around it "
                               f"({100 * share:.0f}%): stickers go on the bare foot")
                    continue
                if spread < best_spread:
                    best, best_spread = ordered, spread
            if best is not None:
                crowd = _lookalikes(best, spots)
                if crowd and four_problem:  # four stickers that cannot be a foot's, not three and a stray
                    return None, four_problem
                if crowd:
                    return None, (f"{crowd} more round green spots of the stickers' size lie near them, so which "
                                  "are the stickers is unclear: keep other green things away from the foot")
                return best, ""
            if shaped:  # a set of this many had a foot's shape: fewer would mislabel it
                break
            four_problem = problem
        return None, problem
