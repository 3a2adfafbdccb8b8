"""What one evaluation photo holds, drawn from one seed: foot, pose, setting, camera, lights, surfaces, phone.

Only the FIND geometry and the landmark contract come from training/foot.py; every draw here
is this module's own, from its own random stream (``STREAM``), so the same integer seed gives
an unrelated scene from the one the training engine would make.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from foot import FindModel, sagittal_angle

STREAM = 0xE7A1_5EED
"""Mixed into every seed: this renderer's random numbers never coincide with the training engine's."""

LENSES = {  # name: (share, 35 mm-equivalent focal range, residual radial distortion k1 range, aperture mm)
    "main": (0.6, (23.0, 28.0), (-0.04, 0.03), 2.8),
    "ultrawide": (0.2, (13.0, 16.0), (0.04, 0.14), 1.0),
    "tele": (0.2, (48.0, 77.0), (-0.01, 0.02), 3.5),
}
VIEWS = {  # name: share. medial/lateral: near side-on; oblique: inner side up to 45 deg off; end_on: from toe or heel
    "medial": 0.6, "oblique": 0.1, "lateral": 0.12, "top_down": 0.12, "end_on": 0.06,
}
SETTINGS = {"standing": 0.5, "heel_raise": 0.15, "couch": 0.35}
LIGHTS = {"window": 0.3, "ceiling": 0.25, "sun": 0.15, "flash": 0.15, "dim": 0.15}
FLOORS = {"wood": 0.25, "tiles": 0.2, "rug": 0.2, "paper": 0.15, "concrete": 0.1, "carpet": 0.1}
COUCHES = {"bedsheet": 0.45, "clinical": 0.35, "sofa": 0.2}
SKIN_LINEAR = np.array([  # diffuse reflectance (linear RGB), very light to very dark; plantar skin is paler
    [0.70, 0.44, 0.33], [0.62, 0.36, 0.24], [0.50, 0.27, 0.16], [0.36, 0.18, 0.10],
    [0.22, 0.11, 0.06], [0.12, 0.06, 0.035], [0.065, 0.034, 0.022]])


def choose(rng: np.random.Generator, table: dict) -> str:
    names = list(table)
    shares = np.array([table[n] if np.isscalar(table[n]) else table[n][0] for n in names], float)
    return names[rng.choice(len(names), p=shares / shares.sum())]


@dataclass
class Light:
    kind: str  # "sun" (directional) or "point"
    vector: np.ndarray  # direction toward the light (sun) or its position (point)
    colour: np.ndarray  # linear RGB irradiance at 1 m (point) or on a facing surface (sun)
    softness: float  # penumbra size: radians of the light's extent


@dataclass
class Setup:
    seed: int
    foot_verts: np.ndarray
    foot_faces: np.ndarray
    find_colours: np.ndarray
    landmarks: dict[str, np.ndarray]
    angle_deg: float
    side: str
    setting: str
    floor_z: float
    leg_axis: tuple[np.ndarray, np.ndarray]  # ankle centre, direction up the shin
    ankle_radii: tuple[float, float]
    other_foot: np.ndarray | None  # vertices of the other foot (same faces), or None
    view: str
    off_axis_deg: float
    elevation_deg: float
    roll_deg: float
    eye: np.ndarray
    target: np.ndarray
    lens: str
    focal_eq_mm: float
    distortion_k1: float
    aperture_mm: float
    size: tuple[int, int]
    lights: list[Light]
    light_kind: str
    ambient_sky: np.ndarray
    ambient_ground: np.ndarray
    surface: str
    wall_distance: float
    skin: float


def _rot(axis, deg: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _pitch_to_level(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees about +y that bring points a and b to the same height."""
    d = b - a
    return float(np.degrees(np.arctan2(d[2], d[0])))


def sample(model: FindModel, seed: int, long_side: int = 1280) -> Setup:
    rng = np.random.default_rng([seed, STREAM])
    shape_z = rng.normal(0, 0.9, 3)
    tex_z = rng.normal(0, 0.9, 3)
    poses = model.pose_examples
    pose_z = poses[rng.integers(len(poses))][1] * rng.uniform(0.6, 1.0) if rng.random() < 0.6 else rng.normal(0, 0.7, 3)
    setting = choose(rng, SETTINGS)
    target = rng.uniform(40, 85) if setting == "heel_raise" else (
        rng.uniform(0, 95) if rng.random() < 0.7 else rng.uniform(45, 80))
    neutral = model.foot(shape_z, pose_z, tex_z)
    foot = model.foot(shape_z, pose_z, tex_z, toe_bend_deg=target - sagittal_angle(neutral.landmarks(model)))
    lm = foot.landmarks(model)
    angle = sagittal_angle(lm)
    verts = foot.verts.astype(float)
    coarse = foot.coarse.astype(float)

    # --- posing the foot in its setting (a rotation about y through the ball of the foot)
    top = coarse[coarse[:, 2] > coarse[:, 2].max() - 0.012]  # the ring where FIND's ankle is cut
    ankle = top.mean(0)
    radii = (float(np.abs(top[:, 0] - ankle[0]).max() * 0.95), float(np.abs(top[:, 1] - ankle[1]).max() * 0.95))
    ball = lm["first_mtp"] + np.array([0, 0, -0.02])
    heel_region, fore_region = verts[verts[:, 0] < -0.06], verts[(verts[:, 0] > 0.0) & (verts[:, 0] < 0.08)]
    pitch = _pitch_to_level(heel_region[heel_region[:, 2].argmin()], fore_region[fore_region[:, 2].argmin()])
    if setting == "heel_raise":  # the toe lies flat on the floor, the heel up
        toe = lm["hallux_tip"] - lm["first_mtp"]
        pitch = float(np.degrees(np.arctan2(toe[2], toe[0]))) + rng.uniform(-2, 4)
    elif setting == "couch":  # lying or sitting with the leg out: the foot stands on its heel, toes up
        pitch -= rng.uniform(55, 90)
    rot = _rot([0, 1, 0], pitch)
    verts = (verts - ball) @ rot.T + ball
    lm = {k: (v - ball) @ rot.T + ball for k, v in lm.items()}
    ankle = (ankle - ball) @ rot.T + ball
    floor_z = float(verts[:, 2].min()) - 0.0005
    shin = rot @ np.array([rng.uniform(-0.3, 0.2), rng.uniform(-0.1, 0.1), 1.0])
    other = None
    if setting != "couch" and rng.random() < 0.45:  # the other foot, stepped aside, forward or back
        other_foot = model.foot(shape_z, rng.normal(0, 0.6, 3), tex_z)
        ov = other_foot.verts.astype(float) * [1, -1, 1]
        turn = _rot([0, 0, 1], rng.uniform(-25, 25))
        shift = np.array([rng.choice([-1, 1]) * rng.uniform(0.28, 0.45), rng.uniform(0.12, 0.3), 0.0])
        ov = ov @ turn.T + shift
        other = ov - [0, 0, ov[:, 2].min() - floor_z - 0.0005]

    # --- a left foot is FIND's right foot mirrored (medial is -y for a right foot)
    side = "right" if rng.random() < 0.5 else "left"
    faces = foot.faces.astype(np.int64)
    mirror = np.array([1.0, -1.0, 1.0])
    if side == "left":
        verts, lm = verts * mirror, {k: v * mirror for k, v in lm.items()}
        ankle, shin = ankle * mirror, shin * mirror
        other = None if other is None else other * mirror
    medial = np.array([0.0, -1.0 if side == "right" else 1.0, 0.0])

    # --- the view: direction from the foot toward the camera
    view = choose(rng, VIEWS)
    elev_min = 2.0 if setting != "couch" else -5.0
    if view in ("medial", "lateral"):
        yaw = rng.normal(0, 9) if rng.random() < 0.7 else rng.uniform(-22, 22)
        elev = rng.uniform(elev_min, 22) if rng.random() < 0.75 else rng.uniform(elev_min, 35)
        base = medial if view == "medial" else -medial
    elif view == "oblique":
        yaw, elev, base = rng.uniform(-45, 45), rng.uniform(15, 45), medial
    elif view == "top_down":  # looking down at the foot from in front of the toes; the shin runs up past the camera
        yaw, elev, base = rng.uniform(-75, 75), rng.uniform(55, 82), np.array([1.0, 0.0, 0.0])
        shin = np.array([-rng.uniform(0.7, 1.2), rng.uniform(-0.2, 0.2), 1.0])  # sitting, the foot put forward
    else:
        yaw, elev, base = rng.choice([-1, 1]) * rng.uniform(65, 110), rng.uniform(5, 40), medial
    direction = _rot([0, 0, 1], yaw) @ base
    direction = np.cos(np.radians(elev)) * direction + np.sin(np.radians(elev)) * np.array([0, 0, 1.0])
    off_axis = float(np.degrees(np.arccos(np.clip(abs(direction @ medial), 0, 1))))

    # --- the phone: lens, framing, distance, roll, picture size
    lens = choose(rng, LENSES)
    _, focal_range, k_range, aperture = LENSES[lens]
    focal_eq = rng.uniform(*focal_range)
    aspect = 4 / 3 if rng.random() < 0.8 else (16 / 9 if rng.random() < 0.5 else 1.0)
    portrait = rng.random() < 0.5
    w, h = (long_side, int(round(long_side / aspect))) if not portrait else (int(round(long_side / aspect)), long_side)
    focal_px = focal_eq / 43.27 * np.hypot(w, h)  # 35 mm-equivalent focal length over the diagonal
    foot_len = float(np.linalg.norm(lm["hallux_tip"] - lm["heel"]))
    fill = rng.uniform(0.4, 0.85) if rng.random() < 0.8 else rng.uniform(0.22, 0.4)
    distance = float(np.clip(foot_len * focal_px / (fill * min(w, h) * (1.25 if portrait else 1.0)), 0.12, 2.5))
    centre = (lm["heel"] + lm["hallux_tip"]) / 2
    aim = centre + rng.normal(0, 0.1, 3) * foot_len
    if view == "top_down":
        distance = max(distance, rng.uniform(0.5, 0.9))
    eye = aim + direction * distance
    if setting != "couch":
        eye[2] = max(eye[2], floor_z + 0.03)
    roll = rng.normal(0, 6) if rng.random() < 0.88 else rng.uniform(-180, 180)

    # --- light
    light_kind = choose(rng, LIGHTS)
    lights, sky, ground = _lights(rng, light_kind, centre, eye, floor_z)
    surface = choose(rng, COUCHES if setting == "couch" else FLOORS)
    skin = float(rng.uniform(0, 1))
    return Setup(seed=seed, foot_verts=verts, foot_faces=faces,
                 find_colours=foot.colors.astype(float), landmarks=lm, angle_deg=angle, side=side, setting=setting,
                 floor_z=floor_z, leg_axis=(ankle, shin / np.linalg.norm(shin)), ankle_radii=radii, other_foot=other,
                 view=view, off_axis_deg=off_axis, elevation_deg=float(elev), roll_deg=float(roll), eye=eye,
                 target=aim, lens=lens, focal_eq_mm=float(focal_eq), distortion_k1=float(rng.uniform(*k_range)),
                 aperture_mm=aperture, size=(w, h), lights=lights, light_kind=light_kind, ambient_sky=sky,
                 ambient_ground=ground, surface=surface, wall_distance=float(rng.uniform(0.3, 1.6)), skin=skin)


def _lights(rng, kind: str, centre: np.ndarray, eye: np.ndarray, floor_z: float):
    """Key light(s) and the room's ambient (sky and ground colours of a hemisphere), linear RGB."""
    def around(elev_lo, elev_hi):
        az, el = np.radians(rng.uniform(0, 360)), np.radians(rng.uniform(elev_lo, elev_hi))
        return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])

    neutral = np.array([1.0, 0.97, 0.92])
    if kind == "window":  # a big soft source from one side
        lights = [Light("sun", around(5, 45), neutral * [0.92, 0.97, 1.05] * rng.uniform(2.0, 4.0), 0.35)]
        sky, ground = np.array([0.55, 0.58, 0.62]), np.array([0.35, 0.3, 0.26])
    elif kind == "ceiling":
        pos = np.array([centre[0] + rng.uniform(-1.2, 1.2), centre[1] + rng.uniform(-1.2, 1.2), floor_z + rng.uniform(2.2, 2.7)])
        warm = np.array([1.0, rng.uniform(0.8, 0.95), rng.uniform(0.6, 0.85)])
        lights = [Light("point", pos, warm * rng.uniform(12, 22), 0.12)]
        sky, ground = warm * 0.45, warm * np.array([0.3, 0.26, 0.22])
    elif kind == "sun":
        lights = [Light("sun", around(20, 65), np.array([1.0, 0.93, 0.82]) * rng.uniform(5, 8), 0.02)]
        sky, ground = np.array([0.42, 0.5, 0.65]), np.array([0.4, 0.36, 0.3])
    elif kind == "flash":  # the phone's LED beside the lens, in a dim room
        pos = eye + rng.normal(0, 0.01, 3)
        lights = [Light("point", pos, np.array([1.0, 0.98, 0.95]) * rng.uniform(0.5, 0.9), 0.01)]
        sky, ground = np.array([0.08, 0.075, 0.07]), np.array([0.05, 0.045, 0.04])
    else:  # dim: one warm lamp far away, an underexposed room
        pos = np.array([centre[0] + rng.uniform(-2, 2), centre[1] + rng.uniform(-2, 2), floor_z + rng.uniform(0.6, 1.8)])
        lights = [Light("point", pos, np.array([1.0, 0.72, 0.45]) * rng.uniform(0.8, 1.8), 0.08)]
        sky, ground = np.array([0.1, 0.085, 0.07]), np.array([0.06, 0.05, 0.04])
    scale = rng.uniform(0.7, 1.3)
    return lights, sky * scale, ground * scale
