"""Markerless landmarks: the project's two-stage ONNX keypoint model, with a quality gate.

Stage 1 looks at the whole (letterboxed) photo: where the five landmarks roughly are, whether
there is a foot, which landmarks are in frame, and how far the view is from side-on; then
again at a crop around those points, for a better-placed heel and forefoot. Stage 2
looks at a rotation- and mirror-normalised forefoot crop cut from the full-resolution photo
and places the four points that set the angle to a fraction of a pixel (averaged over a few
shifted copies of the crop); its view head says how far the camera's perspective turns the
drawn angle away from the foot's own (sagittal) angle, which the measurement adds back
(schema.ViewCorrection), and whether the photo shows the foot's outer side, where the big-toe
joint is hidden and the points would be guesses; its off-axis head says how far the view is from
side-on, which the whole photo at stage 1's resolution shows too coarsely to gate on. When the
foot is small in a full-body photo, MediaPipe's pose model finds it first and stage 1 runs on a
crop around it.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..angle import measure_angle
from ..decode import DecodedImage
from ..errors import LandmarkError, ToeangleError
from ..schema import LANDMARK_NAMES, Detection, Landmarks, Point, Quality, Reason, ViewCorrection
from .base import to_decoded, to_original
from .contract import INPUT_NAME, LETTERBOX, STAGES, StageContract, letterbox_offset, to_input
from .crops import FOREFOOT, apply_affine, forefoot_crop, invert_affine

MODEL_CARD = "keypoints.json"
AREA_REST_FACTOR = 3
"""A shrink goes by whole blocks at most a third of the way (area_shrink): the rest then averages at least three
blocks per output pixel, whose windows so miss a one-step resize's by at most a sixth. On a 12 MP phone photo
to 128 px the pixels differ from a one-step resize by 0.25 grey levels (mean; 99th percentile 2); blocks of the
whole factor differed by 1.2 (p99 9)."""
MAX_FOLLOW_SCALE = 1.35
"""From one frame to the next the metatarsal axis may grow or shrink this much before the foot counts as lost."""
MAX_FOLLOW_MOVE = 0.6
"""... and the big-toe joint may move this many axis lengths (a crop's margin is about one)."""


class ModelMissingError(ToeangleError):
    """The shipped model files are missing or do not match their recorded checksums."""


@dataclass(frozen=True)
class GateLimits:
    """Thresholds of the quality gate; their values live in models/keypoints.json with the model."""

    min_presence: float
    min_in_frame: float
    max_disagreement: float  # foot lengths the turned and mirrored copies' points may scatter (median)
    max_off_axis_deg: float  # both stage 1's estimate (whole photo) and stage 2's (forefoot crop) must be within it
    min_foot_px: float
    min_luminance: float
    max_luminance: float
    min_sharpness: float
    max_uncertainty_deg: float
    min_heel_side_margin: float
    max_lateral: float


@dataclass(frozen=True)
class Stage1:
    points: np.ndarray  # [5, 2] image pixels, in LANDMARK_NAMES order
    presence: float
    in_frame: np.ndarray  # [5]
    off_axis_deg: float
    disagreement: float  # how far the turned and mirrored copies' points scatter, in foot lengths


@dataclass(frozen=True)
class Stage2:
    """Forefoot points and view correction, averaged over the crop and its shifted copies.

    The uncertainties (uncalibrated) combine the network's own spread with how far the
    shifted copies disagree: an answer that moves when the crop moves by 3 pixels is not
    to be trusted, whatever the heatmaps say.
    """

    points: np.ndarray  # [4, 2] image pixels, in FOREFOOT order
    spread: np.ndarray  # [4] image pixels
    crop: np.ndarray  # what the network saw (unshifted)
    correction_deg: float  # estimated 3D angle minus the 2D angle of these points
    correction_sigma_deg: float
    perspective_deg: float  # estimated 3D angle minus the 2D angle of the true points: for points placed by hand
    perspective_sigma_deg: float
    sole_up_logit: float  # log-odds that the unshifted crop shows the sole on top
    lateral: float  # probability that the photo shows the foot's outer side
    off_axis_deg: float  # how far the view is from side-on


class KeypointModel:
    """Both ONNX stages (checked against the contract) and their card: uncertainty scale, gate limits."""

    def __init__(self, models_dir: Path, threads: int = 1):
        import onnxruntime as ort

        card_path = Path(models_dir) / MODEL_CARD
        if not card_path.exists():
            raise ModelMissingError(f"no keypoint model card at {card_path}")
        self.card = json.loads(card_path.read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.sessions = {}
        for stage in ("stage1", "stage2"):
            spec = self.card[stage]
            path = Path(models_dir) / spec["file"]
            data = path.read_bytes() if path.exists() else b""
            if hashlib.sha256(data).hexdigest() != spec["sha256"]:
                raise ModelMissingError(f"{path} is missing or does not match the sha256 in {card_path}")
            self.sessions[stage] = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            _check_contract(self.sessions[stage], STAGES[int(stage[-1])], path)
        self.gate = GateLimits(**self.card["gate"])
        self.sigma_scale = float(self.card["uncertainty"]["sigma_scale"])
        self.test_time_shifts = [tuple(xy) for xy in self.card["stage2"]["test_time_shifts_px"]]
        self.stage2_outputs = STAGES[2].output_names
        self._last_located = None  # (weak reference to the photo, box, Stage1)

    def stage1(self, rgb: np.ndarray) -> Stage1:
        """Stage 1 on the letterboxed photo in all eight of its quarter turns and mirrorings, one batch.

        Each copy's points are mapped back; each landmark is the per-axis median of the four copies
        whose heatmaps are sharpest (presence and in-frame are the copies' mean): the same set of
        copies arises from any turned or mirrored photo, so the answer does not depend on how the
        phone was held, and a copy that goes astray does not move it. On 600 validation renders this
        beat the upright copy alone (heel p95 0.46 vs 0.52 foot lengths, other points 0.33 vs 0.35)
        and the plain median of all eight. How far the copies disagree is kept for the quality gate.
        """
        size = STAGES[1].input_size
        h, w = rgb.shape[:2]
        scale = size / max(h, w)
        # even sizes on the even canvas: equal grey margins on both sides, so that the canvas of a turned or
        # mirrored photo is exactly the turned or mirrored canvas (an odd margin puts the photo 1 px off)
        nw, nh = max(2, 2 * round(w * scale / 2)), max(2, 2 * round(h * scale / 2))
        canvas = np.full((size, size, 3), LETTERBOX, np.uint8)
        ox, oy = letterbox_offset((nw, nh), size)
        block = symmetric_block(w, h, min(w // nw, h // nh) // AREA_REST_FACTOR)
        tx, ty = w % block // 2, h % block // 2  # less equal margins under a block: the same pixels at any turn
        w, h = w - 2 * tx, h - 2 * ty
        canvas[oy:oy + nh, ox:ox + nw] = area_shrink(rgb[ty:ty + h, tx:tx + w], block, (nw, nh))
        views = np.stack([dihedral(canvas, k) for k in range(8)])
        out = dict(zip(STAGES[1].output_names, self.sessions["stage1"].run(None, {INPUT_NAME: to_input(views)})))
        coords, spread = out["coords"], out["spread"]
        copies = np.stack([undo_dihedral(c.astype(np.float64), k, size) for k, c in enumerate(coords)])
        surest = np.argsort(spread, axis=0)[:4]  # [4, 5]: per landmark, the copies whose heatmaps are sharpest
        pts = np.median(np.take_along_axis(copies, surest[..., None], axis=0), axis=0)
        disagreement = float(np.median(np.hypot(*(copies - pts).transpose(2, 0, 1)), axis=0).max())
        pts = (pts - [ox, oy] + 0.5) / [nw / w, nh / h] - 0.5 + [tx, ty]
        return Stage1(points=pts, presence=float(out["presence"].mean()), in_frame=out["in_frame"].mean(0),
                      off_axis_deg=float(np.median(out["off_axis"])),
                      disagreement=disagreement / max(_foot_length(copies.mean(0)), 1.0))

    def locate(self, rgb: np.ndarray, box: tuple[int, int, int, int] | None = None) -> Stage1:
        """Stage 1 on the photo (or the part of it in ``box``), then its points again from a
        second look at the foot alone; points in photo pixels.

        In a 128 px view of the whole photo a mid-sized foot is a few dozen pixels long, and a
        heel placed a few of them off can land across the metatarsal axis and flip the angle's
        sign. The second pass sees a crop around the first pass's points with half a foot
        length of margin (less risks cutting off a misplaced heel); presence, in-frame and
        view angle stay those of the first pass, which the crop's edges would distort. Both
        passes combine all turned and mirrored copies, so neither depends on how the photo
        was turned. The last answer is remembered for the same photo object: under `auto` the
        sticker check locates the foot first, and the keypoint detector then asks again.
        """
        last = self._last_located
        if last is not None and last[0]() is rgb and last[1] == box:  # `auto`: the sticker check asked first
            return last[2]
        ox, oy = box[:2] if box else (0, 0)
        view = rgb[oy:box[3], ox:box[2]] if box else rgb
        first = self.stage1(view)
        h, w = view.shape[:2]
        margin = self.card["stage1"]["refine_margin"] * _foot_length(first.points)
        # the first and the last pixel the margin reaches, both kept: the same pixels whichever way the photo is turned
        x0, y0 = np.maximum(np.floor(first.points.min(0) - margin).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(first.points.max(0) + margin).astype(int) + 1, [w, h])
        if min(x1 - x0, y1 - y0) >= 32 and (x1 - x0) * (y1 - y0) <= 0.6 * w * h:  # else nothing to gain
            first = replace(first, points=self.stage1(view[y0:y1, x0:x1]).points + [x0, y0])
        located = replace(first, points=first.points + [ox, oy])
        self._last_located = (weakref.ref(rgb), box, located)  # weak: no photo is kept once its request is done
        return located

    def stage2(self, rgb: np.ndarray, heel, metatarsal, mtp, shifts=((0.0, 0.0),)) -> Stage2:
        """Forefoot points (image pixels) and the view correction, from the crop the axis defines.

        ``shifts`` (crop pixels, the first normally (0, 0)) moves the crop window; all copies run
        in one batch and their answers, mapped back to the photo, are averaged.
        """
        size = STAGES[2].input_size
        matrix = forefoot_crop(heel, metatarsal, mtp, size)
        matrices = [matrix + [[0, 0, dx], [0, 0, dy]] for dx, dy in shifts]
        crops = np.stack(warp_crops(rgb, matrices, size))
        out = dict(zip(self.stage2_outputs, self.sessions["stage2"].run(None, {INPUT_NAME: to_input(crops)})))
        points = np.stack([apply_affine(invert_affine(m), c) for m, c in zip(matrices, out["coords"])])
        scale = float(np.hypot(*matrix[0, :2]))
        disagreement = np.sqrt(points.var(0).mean(-1))  # [4] image pixels per axis, like spread; 0 for one crop
        correction, perspective = out["correction"], out["perspective"]
        return Stage2(points=points.mean(0), spread=np.hypot(out["spread"].mean(0) / scale, disagreement),
                      crop=crops[0], correction_deg=float(correction.mean()),
                      correction_sigma_deg=float(np.hypot(out["correction_sigma"].mean(), correction.std())),
                      perspective_deg=float(perspective.mean()),
                      perspective_sigma_deg=float(np.hypot(out["perspective_sigma"].mean(), perspective.std())),
                      sole_up_logit=float(out["sole_up_logit"][0]), lateral=float(out["lateral"].mean()),
                      off_axis_deg=float(out["off_axis"].mean()))

    def heel_side_margin(self, rgb: np.ndarray, heel, second: Stage2) -> float:
        """How much better the given heel side explains the forefoot than the mirrored one (log-odds).

        The heel only decides which side is the sole, and so the angle's sign. Stage 2's sole-up
        output learnt one kind of example: an upright crop turned upside down. Each hypothesis
        (heel as given, heel mirrored across the metatarsal axis) is tested on its own crop and
        that crop flipped: under the right one the crop reads low and its flip high. Compared as
        logits, because as probabilities all four often saturate at 0 or 1.
        """
        size = STAGES[2].input_size
        metatarsal, mtp = second.points[0], second.points[1]
        u = (mtp - metatarsal) / np.linalg.norm(mtp - metatarsal)
        rel = np.asarray(heel, np.float64) - metatarsal
        mirrored = metatarsal + 2 * np.dot(rel, u) * u - rel
        other = warp_crop(rgb, forefoot_crop(mirrored, metatarsal, mtp, size), size)
        crops = np.stack([second.crop[::-1], other, other[::-1]])
        flipped, other_up, other_flipped = self.sessions["stage2"].run(["sole_up_logit"], {INPUT_NAME: to_input(crops)})[0]
        return float((flipped - second.sole_up_logit) - (other_flipped - other_up))


def _check_contract(session, contract: StageContract, path: Path) -> None:
    """Refuse an ONNX file whose input or outputs are not the ones contract.py promises."""
    (image,) = session.get_inputs()
    outputs = [o.name for o in session.get_outputs()]
    if image.name != INPUT_NAME or image.shape[1:] != [3, contract.input_size, contract.input_size] \
            or outputs != contract.output_names:
        raise ModelMissingError(f"{path} does not follow detectors/contract.py: input {image.name} {image.shape}, "
                                f"outputs {outputs}")


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """The k-th (0-7) of a square image's quarter turns (k % 4) and their mirror images (k >= 4)."""
    turned = np.rot90(image, k % 4)
    return np.ascontiguousarray(turned[:, ::-1] if k >= 4 else turned)


def undo_dihedral(points: np.ndarray, k: int, size: int) -> np.ndarray:
    """Points found on ``dihedral(image, k)`` -> the same points on ``image`` (pixel centres)."""
    x, y = points[..., 0], points[..., 1]
    if k >= 4:
        x = size - 1 - x
    for _ in range(k % 4):  # np.rot90 sends (x, y) to (y, size - 1 - x)
        x, y = size - 1 - y, x
    return np.stack([x, y], -1)


def warp_crop(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the crop ``matrix`` describes; area-average first when it shrinks the photo (no aliasing)."""
    return warp_crops(rgb, [matrix], size)[0]


def warp_crops(rgb: np.ndarray, matrices: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Cut crops of one scale (a crop and its shifted copies): the photo is area-averaged once for all of
    them, which at 1080p was a third of following a foot from frame to frame."""
    scale = float(np.hypot(*matrices[0][0, :2]))
    if scale < 0.75:
        square = np.array([[0, 0], [size, 0], [0, size], [size, size]], float)
        corners = np.vstack([apply_affine(invert_affine(m), square) for m in matrices])
        x0, y0 = np.floor(corners.min(0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 3  # 2 px past the last pixel reached, as before the first
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 > 2 and y1 - y0 > 2:
            block = max(1, int(1 / scale / AREA_REST_FACTOR))
            (x0, x1), (y0, y1) = (whole_blocks(a, b, block, n) for a, b, n in ((x0, x1, w), (y0, y1, h)))
            region = rgb[y0:y1, x0:x1]
            rw, rh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            small = area_shrink(region, block, (rw, rh))
            sx, sy = rw / (x1 - x0), rh / (y1 - y0)
            # small pixel = (orig - x0 + 0.5) * s - 0.5, so orig = (small + 0.5) / s - 0.5 + x0
            to_orig = np.array([[1 / sx, 0, 0.5 / sx - 0.5 + x0], [0, 1 / sy, 0.5 / sy - 0.5 + y0], [0, 0, 1]])
            matrices = [(np.vstack([m, [0, 0, 1]]) @ to_orig)[:2] for m in matrices]
            rgb = small
    return [cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for m in matrices]


def area_shrink(image: np.ndarray, block: int, size: tuple[int, int]) -> np.ndarray:
    """``image`` area-averaged down to ``size`` (width, height), by way of ``block`` x ``block`` averages when its
    sides divide by ``block``: OpenCV averages whole blocks several times faster than it resizes by any other
    factor (a 12 MP phone photo to stage 1's 128 px: 3 ms instead of 8). Both steps average areas, so the
    photo's geometry is kept exactly; see AREA_REST_FACTOR for the pixels."""
    h, w = image.shape[:2]
    if block >= 2 and w % block == 0 and h % block == 0 and w // block >= size[0] and h // block >= size[1]:
        image = cv2.resize(image, (w // block, h // block), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def symmetric_block(w: int, h: int, most: int) -> int:
    """The largest block side up to ``most`` that leaves an even remainder on both sides (so equal margins can be
    trimmed: the same pixels whichever way the photo is turned), 1 if none of the larger half does."""
    for k in range(most, max(1, most // 2), -1):
        if k >= 2 and w % k % 2 == 0 and h % k % 2 == 0:
            return k
    return 1


def whole_blocks(start: int, end: int, k: int, limit: int) -> tuple[int, int]:
    """[start, end) widened to a whole number of k-pixel blocks, half on each side, within [0, limit); where the
    photo's edge leaves no room, trimmed there instead (under k pixels at the edge, which the crop then repeats);
    as it was where the photo is not one block long."""
    extra = -(end - start) % k
    first, last = start - extra // 2, end + extra - extra // 2
    if first < 0:
        first, last = 0, last - first
    if last > limit:
        first, last = max(first - (last - limit), 0), limit
    last -= (last - first) % k
    return (first, last) if last > first else (start, end)


class KeypointDetector:
    """Close-up photos go straight to the model; small feet are found with MediaPipe first."""

    name = "keypoint"

    def __init__(self, models_dir: Path, locator_factory=None, threads: int = 1):
        self.model = KeypointModel(models_dir, threads)
        self._locator_factory = locator_factory
        self._locator = None

    @property
    def locator(self):
        """Built on first need: MediaPipe costs half a second to load and close-ups never use it."""
        if self._locator is None and self._locator_factory is not None:
            self._locator = self._locator_factory()
        return self._locator

    def detect(self, image: DecodedImage) -> Detection:
        rgb = image.rgb
        first = self.model.locate(rgb)
        path = "keypoint"
        gate = self.model.gate
        foot_px = _foot_length(first.points)
        small = first.presence < gate.min_presence or foot_px < 0.25 * max(rgb.shape[:2])
        if small and self.locator is not None:
            box = self.locator.locate(rgb)
            if box is not None:
                first = self.model.locate(rgb, box)
                path = "mediapipe+keypoint"
        detector = f"{path}:{self.model.card['version']}"
        reasons = self._stage1_reasons(first, image)
        if reasons:
            return Detection(landmarks=self._landmarks(first, None, None, image), detector=detector,
                             quality=Quality.refuse(*reasons))
        heel = first.points[0]
        second = self.model.stage2(rgb, heel, first.points[1], first.points[2])
        # recentre on the refined axis, and average over the card's shifted copies of that crop
        second = self.model.stage2(rgb, heel, second.points[0], second.points[1], self.model.test_time_shifts)
        return self._judged(first, second, image, detector, check_heel_side=True)

    def _judged(self, first: Stage1, second: Stage2, image: DecodedImage, detector: str,
                check_heel_side: bool) -> Detection:
        """Stage 2's answer through the quality gate, as a Detection."""
        rgb, gate, heel = image.rgb, self.model.gate, first.points[0]
        reasons = _crop_reasons(second.crop, gate)
        if second.off_axis_deg > gate.max_off_axis_deg:
            reasons.append(_view_reason(second.off_axis_deg, gate.max_off_axis_deg))
        if second.lateral > gate.max_lateral:
            reasons.append(Reason("outer_side", "this looks like the outer side of the foot, where the big-toe joint "
                                  "is hidden behind the foot: photograph the inner side"))
        if check_heel_side and self.model.heel_side_margin(rgb, heel, second) < gate.min_heel_side_margin:
            reasons.append(Reason("heel_unsure", "the heel could not be placed reliably, so bent up and bent down "
                                  "cannot be told apart: photograph the whole foot, heel to toe"))
        landmarks = self._landmarks(first, second.points, second.spread, image)
        scale = self.model.sigma_scale
        correction = ViewCorrection(degrees=round(float(np.clip(second.correction_deg, -45, 45)), 2),
                                    sigma_deg=round(second.correction_sigma_deg * scale, 2),
                                    moved_points_deg=round(float(np.clip(second.perspective_deg, -45, 45)), 2),
                                    moved_points_sigma_deg=round(second.perspective_sigma_deg * scale, 2))
        spread_deg = _angle_uncertainty(landmarks, correction)
        if spread_deg is not None and spread_deg > gate.max_uncertainty_deg:
            reasons.append(Reason("landmarks_uncertain",
                                  f"the toe's landmarks are too uncertain (+/- {spread_deg:.0f} degrees)"))
        return Detection(landmarks=landmarks, detector=detector, view_correction=correction,
                         quality=Quality.refuse(*reasons) if reasons else Quality.ok())

    def follow(self, image: DecodedImage, previous: Landmarks, shift: int | None = None) -> Detection:
        """Stage 2 alone, on the forefoot crop that ``previous`` (the last frame's landmarks, original
        pixels) defines: how a clip is tracked, stage 1 being the costly part.

        The heel, which stage 2 does not place, moves with the metatarsal axis as one rigid piece: it
        only sets which side is the sole, and in a heel raise the foot turns about the big-toe joint.
        The photo gates on the crop, the view and the uncertainty apply; the heel-side check does not
        (the side was settled when the foot was found). A crop that lost the foot is refused with
        ``foot_lost``: the caller finds the foot again with ``detect``.

        ``shift``: None averages the card's shifted copies of the crop, as for a photo; an index runs
        only that copy (index modulo their number), a third of the work: a clip passes the frame's
        index, so that neighbouring frames see different copies and its curve's smoothing does the
        averaging the copies do within one photo.
        """
        rough = to_decoded(previous, image).present()
        if not {"heel", "first_metatarsal", "first_mtp"} <= rough.keys():
            raise ValueError("following needs the previous heel, first_metatarsal and first_mtp")
        heel, metatarsal, mtp = (np.array(rough[n].xy) for n in ("heel", "first_metatarsal", "first_mtp"))
        shifts = self.model.test_time_shifts
        shifts = shifts if shift is None else (shifts[shift % len(shifts)],)
        second = self.model.stage2(image.rgb, heel, metatarsal, mtp, shifts)
        detector = f"keypoint:{self.model.card['version']}"
        old_axis, new_axis = mtp - metatarsal, second.points[1] - second.points[0]
        ratio = np.hypot(*new_axis) / max(np.hypot(*old_axis), 1e-6)
        moved = np.hypot(*(second.points[1] - mtp)) / max(np.hypot(*old_axis), 1e-6)
        if not (1 / MAX_FOLLOW_SCALE < ratio < MAX_FOLLOW_SCALE) or moved > MAX_FOLLOW_MOVE:
            return Detection(landmarks=previous, detector=detector, quality=Quality.refuse(Reason(
                "foot_lost", f"the foot moved or changed size too much since the last frame (axis x{ratio:.2f}, "
                f"joint moved {moved:.2f} axis lengths)")))
        turn = np.arctan2(np.cross(old_axis, new_axis), np.dot(old_axis, new_axis))
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]) * ratio
        heel = second.points[0] + rotation @ (heel - metatarsal)
        in_frame = [1.0 if n not in rough or rough[n].confidence is None else rough[n].confidence
                    for n in LANDMARK_NAMES]
        first = Stage1(points=np.vstack([heel, second.points]), presence=1.0, in_frame=np.array(in_frame),
                       off_axis_deg=second.off_axis_deg, disagreement=0.0)
        return self._judged(first, second, image, detector, check_heel_side=False)

    def _stage1_reasons(self, first: Stage1, image: DecodedImage) -> list[Reason]:
        gate = self.model.gate
        if first.presence < gate.min_presence:
            return [Reason("no_foot", "no foot found in the photo")]
        # scattered copies first: the points are guesses, so would be the view, size and cut-offs read from them
        # (on the real set: every non-foot picture whose presence passes, and 7 of 10 rear views); the view
        # reason still follows, since the view estimate comes from the whole photo, not from the points
        reasons = []
        if first.disagreement > gate.max_disagreement:
            reasons.append(Reason("foot_unreliable", "no foot could be found reliably (the model places its "
                                  "landmarks differently when the photo is turned): photograph the whole foot, heel "
                                  "to toe, from its inner side"))
        if first.off_axis_deg > gate.max_off_axis_deg:
            reasons.append(_view_reason(first.off_axis_deg, gate.max_off_axis_deg))
        if reasons:
            return reasons
        names = dict(zip(LANDMARK_NAMES, first.in_frame))
        cut = [n for n in ("first_metatarsal", "first_mtp", "hallux_ip") if names[n] < gate.min_in_frame]
        if cut:
            reasons.append(Reason("toe_cut_off", "the big toe or forefoot is cut off at the edge of the photo ("
                                  + ", ".join(cut) + ")"))
        foot_px = _foot_length(first.points) * image.scale[0]
        if foot_px < gate.min_foot_px:
            reasons.append(Reason("foot_too_small", f"the foot is too small in the photo ({foot_px:.0f} px long; "
                                  f"at least {gate.min_foot_px:.0f} px needed): move closer"))
        return reasons

    def _landmarks(self, first: Stage1, forefoot, spread, image: DecodedImage) -> Landmarks:
        points = {}
        for i, name in enumerate(LANDMARK_NAMES):
            conf = float(np.clip(first.in_frame[i], 0, 1))
            xy, sigma = first.points[i], None
            if forefoot is not None and name in FOREFOOT:
                j = FOREFOOT.index(name)
                xy, sigma = forefoot[j], float(spread[j]) * self.model.sigma_scale
            points[name] = Point(x=float(xy[0]), y=float(xy[1]), confidence=round(conf, 3),
                                 sigma_px=None if sigma is None else round(sigma, 3))
        return to_original(Landmarks(**points), image)


def _angle_uncertainty(landmarks: Landmarks, correction: ViewCorrection) -> float | None:
    try:
        return measure_angle(landmarks, correction).uncertainty_deg
    except LandmarkError:
        return None


def _foot_length(points: np.ndarray) -> float:
    return float(np.hypot(*(points[4] - points[0])))


def _view_reason(off_axis_deg: float, limit_deg: float) -> Reason:
    return Reason("off_axis", f"the view is about {off_axis_deg:.0f} degrees away from side-on (limit "
                  f"{limit_deg:.0f}): photograph the inner side of the foot with the camera at foot height")


def _crop_reasons(crop: np.ndarray, gate: GateLimits) -> list[Reason]:
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    reasons = []
    luminance = float(gray.mean())
    if luminance < gate.min_luminance:
        reasons.append(Reason("too_dark", f"the photo is too dark around the toe (mean brightness {luminance:.0f}/255)"))
    elif luminance > gate.max_luminance:
        reasons.append(Reason("overexposed",
                              f"the photo is overexposed around the toe (mean brightness {luminance:.0f}/255)"))
    sharpness = float(cv2.Laplacian(cv2.GaussianBlur(gray, (0, 0), 0.7), cv2.CV_32F).std())
    if sharpness < gate.min_sharpness:
        reasons.append(Reason("blurred", f"the toe region is too blurred (sharpness {sharpness:.1f}, "
                              f"needs {gate.min_sharpness:.1f})"))
    return reasons
