"""Random photo-like foot scenes from a seed: what varies in a real photo varies here.

``sample_scene(seed)`` gives a Scene plus its truth (3D landmarks, angle, side, view, the
camera's angle off side-on). ``photo`` renders it at any size; ``forefoot`` renders the
second-stage crop through the same camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from foot import LANDMARKS, FindModel, sagittal_angle
from realism import Dressing, dress
from render import Camera, Lights, Mesh, Scene, TexturedQuad, ndc_to_pixels

from toeangle.detectors.crops import forefoot_crop

SKIN_TONES = np.array([  # sRGB 0..1, very light to very dark
    [0.97, 0.84, 0.76], [0.93, 0.75, 0.64], [0.84, 0.63, 0.50], [0.72, 0.51, 0.38],
    [0.55, 0.37, 0.26], [0.40, 0.27, 0.19], [0.26, 0.17, 0.12]])
NATURAL = np.array([[0.80, 0.70, 0.55], [0.62, 0.44, 0.28], [0.50, 0.50, 0.50], [0.90, 0.90, 0.87],
                    [0.70, 0.42, 0.30], [0.22, 0.22, 0.22], [0.75, 0.72, 0.68], [0.45, 0.35, 0.28]])
CLOTH = np.array([[0.1, 0.12, 0.2], [0.2, 0.2, 0.22], [0.5, 0.45, 0.4], [0.6, 0.1, 0.1], [0.15, 0.3, 0.5],
                  [0.85, 0.85, 0.85], [0.05, 0.05, 0.05]])

TOE_ANGLE_MIX = ((0.6, (-20.0, 100.0)), (0.4, (20.0, 85.0)))
"""How the toe's target angle is drawn: (share, uniform range) pairs. The second part puts more
angles where the thresholds are; bench/accuracy.py weights its verdict figures to this mix."""


def toe_angle_density(lo: float, hi: float) -> float:
    """Share of drawn target angles in [lo, hi)."""
    return sum(share * max(0.0, min(hi, b) - max(lo, a)) / (b - a) for share, (a, b) in TOE_ANGLE_MIX)


TOE_STATES = ("held", "lifted", "resting")
"""The toe pushed back by a hand or an object (a passive test), lifted by the person (active), or resting:
stage 1's auxiliary posture target (training/networks.py)."""
TOE_RESTING_MAX_DEG, TOE_LIFTED_MIN_DEG = 25.0, 40.0
"""Without a hand on it, a toe bent back at most this far is labelled resting, at least that far lifted;
between the two (and under a raised heel, where the floor bends it) its state is left unlabelled."""


@dataclass
class Truth:
    landmarks3d: dict[str, np.ndarray]
    angle_deg: float
    side: str  # left | right
    view: str  # medial | lateral
    off_axis_deg: float  # camera direction vs the foot's medial-lateral axis
    setting: str  # held | standing | heel_raise
    skin: float  # 0 very light .. 1 very dark
    hand: bool  # a hand holds the toe (partly hiding it)


def posture_labels(truth: Truth) -> tuple[bool, bool, int]:
    """Stage 1's posture targets: standing, heel raised, and the toe's state (an index into TOE_STATES,
    -1 where the render does not say)."""
    if truth.hand:
        toe = TOE_STATES.index("held")
    elif truth.setting == "heel_raise" or TOE_RESTING_MAX_DEG < truth.angle_deg < TOE_LIFTED_MIN_DEG:
        toe = -1
    else:
        toe = TOE_STATES.index("resting" if truth.angle_deg <= TOE_RESTING_MAX_DEG else "lifted")
    return truth.setting != "held", truth.setting == "heel_raise", toe


def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Procedural wall/floor/clutter textures: plain paint, wood, tiles, fabric, blobs."""
    if rng.random() < 0.75:  # the floors and walls of real photos: wood, stone, paint, tiles, carpet
        base = NATURAL[rng.integers(len(NATURAL))] * rng.uniform(0.75, 1.15) + rng.normal(0, 0.04, 3)
    else:
        base = rng.uniform(0.15, 0.95, 3) * rng.uniform(0.6, 1.0)
    kind = rng.choice(["plain", "wood", "tiles", "fabric", "clutter"], p=[0.3, 0.2, 0.15, 0.15, 0.2])
    img = np.ones((size, size, 3)) * base

    def noise(scale):
        small = rng.normal(0, 1, (max(2, size // scale), max(2, size // scale), 1))
        return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]

    img = img * (1 + 0.08 * noise(64)) + 0.03 * noise(4)
    if kind == "wood":
        y = np.arange(size)[:, None] + 12 * noise(32)[..., 0] + 0 * np.arange(size)[None]
        img = img * (1 + 0.15 * np.sin(y / rng.uniform(2, 8)))[..., None]
        plank = rng.integers(16, 64)
        img[(np.arange(size) % plank) < 2] *= 0.6
    elif kind == "tiles":
        step = rng.integers(24, 96)
        grout = rng.uniform(0.3, 1.0, 3)
        mask = (np.arange(size) % step < 3)
        img[mask] = grout
        img[:, mask] = grout
    elif kind == "fabric":
        img = img * (1 + 0.2 * noise(2)) * (1 + 0.1 * np.sin(np.arange(size) / 1.5))[:, None, None]
    elif kind == "clutter":
        for _ in range(rng.integers(3, 12)):
            col = rng.uniform(0, 1, 3)
            col = col * 0.5 + col.mean() * 0.5 if rng.random() < 0.7 else col
            c = rng.integers(0, size, 2)
            ax = rng.integers(8, 90, 2)
            if rng.random() < 0.5:
                cv2.ellipse(img, tuple(int(v) for v in c), tuple(int(v) for v in ax), float(rng.uniform(0, 180)),
                            0, 360, col.tolist(), -1)
            else:
                cv2.rectangle(img, tuple(int(v) for v in c), tuple(int(v) for v in c + ax), col.tolist(), -1)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def ellipsoid(centre, radii, rotation, color, n=12) -> Mesh:
    u, v = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n))
    pts = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1).reshape(-1, 3)
    normals = pts @ np.diag(1 / np.asarray(radii)) @ rotation.T
    verts = pts * radii @ rotation.T + centre
    faces = _grid_faces(2 * n, n)
    return Mesh(verts.astype(np.float32), faces, np.tile(color, (len(verts), 1)).astype(np.float32),
                (normals / np.linalg.norm(normals, axis=1, keepdims=True)).astype(np.float32))


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (i * cols + j).ravel()
    return np.concatenate([np.stack([a, a + cols, a + 1], 1), np.stack([a + 1, a + cols, a + cols + 1], 1)]).astype(np.int32)


def leg(bottom, direction, radius, length, colors_along) -> Mesh:
    """A tapered tube from the ankle up (the calf widens), coloured ring by ring (skin or trousers)."""
    direction = direction / np.linalg.norm(direction)
    side = np.cross(direction, [0, 1, 0])
    side /= np.linalg.norm(side)
    other = np.cross(direction, side)
    rings, segs = len(colors_along), 24
    t = np.linspace(0, 1, rings)
    r = radius * (1 + 0.45 * np.sin(np.clip(t * 1.6, 0, np.pi / 2)))
    ang = np.linspace(0, 2 * np.pi, segs)
    circle = np.cos(ang)[:, None] * side + np.sin(ang)[:, None] * other
    verts = (bottom + (t * length)[:, None, None] * direction + r[:, None, None] * circle[None]).reshape(-1, 3)
    normals = np.repeat(circle[None], rings, 0).reshape(-1, 3)
    colors = np.repeat(np.asarray(colors_along), segs, 0)
    return Mesh(verts.astype(np.float32), _grid_faces(rings, segs), colors.astype(np.float32), normals.astype(np.float32))


class SceneSampler:
    """Everything random about a photo, drawn from one seed."""

    def __init__(self, model: FindModel | None = None):
        self.model = model or FindModel()
        self.top_ring = None

    def sample(self, seed: int, off_axis_max: float = 30.0, wide_view_share: float = 0.12,
               lateral_share: float = 0.15, top_down_share: float = 0.0, realism: float = 0.0) -> tuple[Scene, Truth]:
        """``realism`` (0..1): how often the details of real photos are added (realism.py); the truth stays."""
        rng = np.random.default_rng(seed)
        m = self.model
        # --- the foot: shape, texture, a recorded pose, and the toe bend that sets the angle
        shape_z, tex_z = rng.normal(0, 1, 3), rng.normal(0, 1, 3)
        pose_z = m.pose_examples[rng.integers(len(m.pose_examples))][1] if rng.random() < 0.7 else rng.normal(0, 0.8, 3)
        base = m.foot(shape_z, pose_z, tex_z)
        base_angle = sagittal_angle(base.landmarks(m))
        (share, wide), (_, narrow) = TOE_ANGLE_MIX
        target = rng.uniform(*wide) if rng.random() < share else rng.uniform(*narrow)
        foot = m.foot(shape_z, pose_z, tex_z, toe_bend_deg=target - base_angle)
        lm = foot.landmarks(m)
        angle = sagittal_angle(lm)
        verts, coarse = foot.verts.copy(), foot.coarse.copy()

        # --- skin tone, from very light to very dark, keeping FIND's spatial colour variation
        skin = rng.uniform(0, 1)
        tone = _interp(SKIN_TONES, skin) * rng.uniform(0.92, 1.08, 3)
        rel = foot.colors / foot.colors.mean(0)
        colors = np.clip(tone * rel ** rng.uniform(0.3, 1.0), 0, 1)

        # --- setting: held in the air (passive/active), standing with toe lifted, or heel raise
        setting = rng.choice(["held", "standing", "heel_raise"], p=[0.55, 0.3, 0.15])
        points = {k: v.copy() for k, v in lm.items()}
        top = coarse[coarse[:, 2] > coarse[:, 2].max() - 0.015]
        ankle, ankle_r = top.mean(0), np.linalg.norm(top[:, :2] - top[:, :2].mean(0), axis=1).mean()
        leg_dir = np.array([rng.uniform(-0.25, 0.25), 0, 1.0])
        pivot, tilt = lm["first_mtp"], 0.0
        if setting == "heel_raise":  # the foot pivots about the MTP joint until the toe lies flat
            tilt = -(angle - rng.uniform(25, 35))
        elif setting == "held":
            tilt = rng.uniform(-25, 15)
        rot = _rot([0, 1, 0], -tilt)  # positive tilt lifts the toes
        verts = (verts - pivot) @ rot.T + pivot
        points = {k: (v - pivot) @ rot.T + pivot for k, v in points.items()}
        ankle = (ankle - pivot) @ rot.T + pivot
        leg_dir = rot @ leg_dir
        floor_z = verts[:, 2].min() if setting != "held" else verts[:, 2].min() - rng.uniform(0.05, 0.6)

        meshes = [Mesh(verts, foot.faces, colors.astype(np.float32))]
        leg_index = None
        if rng.random() < 0.85:
            leg_index = len(meshes)
            rings = 12
            trousers = rng.random() < 0.35
            cut = rng.integers(3, rings) if trousers else rings
            cloth = CLOTH[rng.integers(len(CLOTH))] * rng.uniform(0.7, 1.2)
            along = [tone * rng.uniform(0.95, 1.05) if i < cut else cloth for i in range(rings)]
            meshes.append(leg(ankle - 0.012 * leg_dir / np.linalg.norm(leg_dir), leg_dir, ankle_r * rng.uniform(0.9, 1.15),
                              rng.uniform(0.25, 0.45), np.clip(along, 0, 1)))
        hand = setting != "standing" and rng.random() < 0.45
        if hand:  # a hand holding the toe back (passive test)
            meshes += self._hand(rng, points, tone if rng.random() < 0.4 else _interp(SKIN_TONES, rng.uniform(0, 1)))
        if rng.random() < 0.2:  # clutter beside the foot, away from the forefoot
            c = points["heel"] + np.array([rng.uniform(-0.15, 0.0), rng.uniform(-0.2, 0.2), rng.uniform(-0.02, 0.1)])
            meshes.append(ellipsoid(c, rng.uniform(0.02, 0.07, 3), _rot(rng.normal(size=3), rng.uniform(0, 180)),
                                    rng.uniform(0, 1, 3)))

        # --- mirror for a left foot (FIND is a right foot; medial is -y)
        side = "right" if rng.random() < 0.5 else "left"
        if side == "left":
            flip = np.array([1, -1, 1], np.float32)
            meshes = [Mesh(mm.verts * flip, mm.faces[:, ::-1].copy(), mm.colors,
                           None if mm.normals is None else mm.normals * flip) for mm in meshes]
            points = {k: v * flip for k, v in points.items()}
        medial_dir = np.array([0, -1.0 if side == "right" else 1.0, 0])

        # --- camera: mostly near side-on, sometimes far off (so the gate learns to refuse)
        view = "lateral" if rng.random() < lateral_share else "medial"
        toward_camera = medial_dir if view == "medial" else -medial_dir
        if rng.random() < wide_view_share:
            off = rng.uniform(off_axis_max, 90)
        else:
            off = abs(rng.normal(0, off_axis_max / 2)) if rng.random() < 0.7 else rng.uniform(0, off_axis_max)
            off = min(off, off_axis_max)
        az = rng.uniform(0, 2 * np.pi)  # how the off-axis angle splits into yaw and pitch
        if top_down_share and off > off_axis_max and rng.random() < top_down_share:
            az = np.pi / 2 + rng.normal(0, 0.3)  # looking down at one's own foot, as most phone photos do
        yaw, pitch = off * np.cos(az), abs(off * np.sin(az)) if rng.random() < 0.8 else off * np.sin(az)
        direction = _rot([0, 0, 1], yaw) @ toward_camera
        horizontal = np.cross([0, 0, 1], direction)
        direction = _rot(horizontal, -pitch) @ direction if np.linalg.norm(horizontal) > 1e-6 else direction
        off_axis = float(np.degrees(np.arccos(np.clip(abs(direction @ medial_dir), 0, 1))))
        fov = rng.uniform(35, 75)
        frac = rng.uniform(0.3, 0.95) if rng.random() < 0.75 else rng.uniform(0.15, 0.35)
        foot_len = np.linalg.norm(points["hallux_tip"] - points["heel"])
        dist = foot_len / frac / (2 * np.tan(np.radians(fov) / 2))
        centre = (points["heel"] + points["hallux_tip"]) / 2
        target_pt = centre + rng.normal(0, 0.12, 3) * foot_len
        roll = rng.uniform(0, 360) if rng.random() < 0.5 else rng.normal(0, 8)
        up = _rot(direction, roll) @ np.array([0, 0, 1.0])
        camera = Camera(eye=target_pt + direction * dist, target=target_pt, up=up, fov_y_deg=fov,
                        near=dist * 0.2, far=dist * 10)

        # --- wall behind, floor under, lights
        quads = []
        back = target_pt - direction * rng.uniform(0.25, 1.5)
        s1 = np.cross(direction, [0, 0, 1]) if abs(direction[2]) < 0.95 else np.array([1.0, 0, 0])
        s1 /= np.linalg.norm(s1)
        s2 = np.cross(direction, s1)
        big = dist * 4
        quads.append(TexturedQuad(np.array([back - big * s1 - big * s2, back + big * s1 - big * s2,
                                            back + big * s1 + big * s2, back - big * s1 + big * s2]),
                                  texture(rng), rng.uniform(1, 12), rng.uniform(0.5, 1.2)))
        if setting != "held" or rng.random() < 0.4:
            f = 3.0
            quads.append(TexturedQuad(np.array([[-f, -f, floor_z], [f, -f, floor_z], [f, f, floor_z], [-f, f, floor_z]]),
                                      texture(rng), rng.uniform(4, 40), rng.uniform(0.5, 1.2)))
        key = direction + rng.normal(0, 0.7, 3) + np.array([0, 0, 0.5])
        warm = np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 1.0)])
        lights = Lights(key_dir=key / np.linalg.norm(key), key_col=warm * rng.uniform(0.45, 0.95),
                        fill_dir=_unit(rng.normal(0, 1, 3)), fill_col=np.ones(3) * rng.uniform(0.05, 0.35),
                        ambient=np.ones(3) * rng.uniform(0.12, 0.4), shininess=rng.uniform(8, 40),
                        spec_strength=rng.uniform(0.0, 0.15))
        background = tuple(rng.uniform(0.1, 0.9, 3))
        truth = Truth(landmarks3d=points, angle_deg=angle, side=side, view=view, off_axis_deg=off_axis,
                      setting=str(setting), skin=float(skin), hand=bool(hand))
        scene = Scene(meshes, quads, lights, camera, background)
        if realism > 0:
            mirror = np.array([1, -1 if side == "left" else 1, 1])
            dress(scene, m, Dressing(tone=tone, skin=float(skin), leg=leg_index, ankle=ankle * mirror,
                                     leg_dir=leg_dir * mirror, ankle_r=float(ankle_r), floor=1 if len(quads) > 1 else None,
                                     floor_z=float(floor_z), standing=setting != "held", points=points,
                                     medial=medial_dir),
                  np.random.default_rng([seed, 31]), realism, seed)
        return scene, truth

    def _hand(self, rng, points, tone) -> list[Mesh]:
        """A thumb under the big toe and fingers beyond it, as when someone pushes the toe up."""
        toe = points["hallux_tip"] - points["first_mtp"]
        along = toe / np.linalg.norm(toe)
        plantar = np.cross(along, [0, 1, 0])
        plantar = -plantar if plantar[2] > 0 else plantar
        meshes = []
        thumb = points["hallux_ip"] + along * rng.uniform(0.0, 0.03) + plantar * rng.uniform(0.012, 0.02)
        frame = np.stack([np.array([0, 1.0, 0]), along, plantar], 1)
        meshes.append(ellipsoid(thumb + np.array([0, rng.uniform(-0.03, 0.03), 0]), [0.035, 0.011, 0.009], frame,
                                tone * rng.uniform(0.9, 1.05)))
        for k in range(rng.integers(0, 4)):
            c = points["hallux_tip"] + along * (0.02 + 0.01 * k) + plantar * 0.01 + np.array([0, rng.uniform(-0.04, 0.04), 0])
            meshes.append(ellipsoid(c, [0.04, 0.009, 0.009], frame, tone * rng.uniform(0.9, 1.05)))
        return meshes


def _unit(v):
    return v / np.linalg.norm(v)


def _interp(table: np.ndarray, t: float) -> np.ndarray:
    x = t * (len(table) - 1)
    i = min(int(x), len(table) - 2)
    return table[i] * (1 - (x - i)) + table[i + 1] * (x - i)


def project(scene: Scene, truth: Truth, size: tuple[int, int]) -> dict[str, np.ndarray]:
    names = list(LANDMARKS)
    pts = np.stack([truth.landmarks3d[k] for k in names])
    px = ndc_to_pixels(scene.camera.project_ndc(pts, size[0] / size[1]), size)
    return dict(zip(names, px))


def forefoot_matrix(points_px: dict[str, np.ndarray], out_size: int, rng: np.random.Generator | None = None,
                    jitter: float = 0.0) -> np.ndarray:
    """The runtime crop around the true points, disturbed as a first stage's error would disturb it."""
    pts = {k: np.asarray(v, float) for k, v in points_px.items()}
    if rng is not None and jitter > 0:
        length = np.linalg.norm(pts["first_mtp"] - pts["first_metatarsal"])
        for k in ("first_metatarsal", "first_mtp", "heel"):
            pts[k] = pts[k] + rng.normal(0, jitter * length, 2)
    return forefoot_crop(pts["heel"], pts["first_metatarsal"], pts["first_mtp"], out_size)


def degrade(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """What phones and people do to photos: exposure, colour cast, blur, noise, JPEG."""
    x = img.astype(np.float32) / 255
    x = np.clip(x * rng.uniform(0.6, 1.35) * rng.uniform(0.9, 1.1, 3), 0, 1) ** rng.uniform(0.75, 1.3)
    if rng.random() < 0.6 * strength:
        sigma = rng.uniform(0.3, 1.6) * strength
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    if rng.random() < 0.15 * strength:
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1 / k
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(0, 180)), 1)
        x = cv2.filter2D(x, -1, cv2.warpAffine(kernel, rot, (k, k)))
    x = x + rng.normal(0, rng.uniform(0, 0.035) * strength, x.shape)
    out = (np.clip(x, 0, 1) * 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, enc = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 96))])
        out = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]
    return out
