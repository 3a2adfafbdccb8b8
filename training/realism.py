"""What real phone photos of feet have and plain renders lack, added to a sampled scene.

``SceneSampler.sample(seed, realism=r)`` calls ``dress``: skin detail (nails and polish, creases,
toe gaps, pale soles, calluses, redness, veins, hair, bruises, plasters, the shade of its hollows),
socks, trouser hems and sandal straps away from the big-toe joint, the other foot stepped aside,
floors and rugs and paper and beds and couches with things lying on them, shadows cast on the floor
and a contact shadow under a foot that stands, light from a phone's flash to a dim warm room or the
sun, and the phone's camera (barrel distortion, which moves the truth's points with the image, then
auto exposure, HDR tone, white balance, uneven light, sharpening halos, sensor noise, its JPEG).
``r`` (0..1) scales how often each appears. Every draw comes from its own generator, so the scene's
foot, pose, camera and truth are those of realism 0, and realism 0 adds nothing. Nothing added may
hide a landmark (the truth says every point is seen). All content is procedural.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np
import scipy.sparse as sp
from foot import FindModel
from render import Lights, Mesh, Scene, TexturedQuad
from scipy.ndimage import map_coordinates

POLISH = np.array([[0.75, 0.05, 0.1], [0.45, 0.02, 0.08], [0.9, 0.45, 0.55], [0.05, 0.04, 0.06],
                   [0.35, 0.1, 0.4], [0.85, 0.6, 0.5], [0.95, 0.35, 0.25], [0.15, 0.25, 0.6]])
HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.17, 0.1], [0.5, 0.38, 0.25]])
SOCKS = np.array([[0.05, 0.05, 0.06], [0.9, 0.9, 0.88], [0.5, 0.5, 0.52], [0.2, 0.25, 0.45], [0.6, 0.15, 0.2]])
DENIM = np.array([[0.18, 0.25, 0.4], [0.3, 0.4, 0.55], [0.1, 0.12, 0.18]])
WOODS = np.array([[0.75, 0.6, 0.42], [0.4, 0.26, 0.15], [0.6, 0.58, 0.55], [0.55, 0.3, 0.18], [0.85, 0.8, 0.72],
                  [0.62, 0.45, 0.3], [0.3, 0.2, 0.14]])
RUG = np.array([[0.5, 0.1, 0.1], [0.1, 0.12, 0.3], [0.85, 0.78, 0.62], [0.7, 0.55, 0.25], [0.25, 0.35, 0.3],
                [0.6, 0.3, 0.2], [0.15, 0.1, 0.1], [0.75, 0.7, 0.7]])
STRAPS = np.array([[0.1, 0.08, 0.07], [0.45, 0.28, 0.15], [0.85, 0.8, 0.7], [0.2, 0.3, 0.5], [0.7, 0.2, 0.2]])


@dataclass
class Dressing:
    """What dress() needs to know of the sampled scene besides its meshes (meshes[0] is the foot, its vertex i
    FIND's vertex i) and quads."""

    tone: np.ndarray  # the skin colour
    skin: float  # 0 very light .. 1 very dark
    leg: int | None  # index of the leg's mesh
    ankle: np.ndarray  # scene frame
    leg_dir: np.ndarray  # scene frame
    ankle_r: float
    floor: int | None  # index of the floor's quad
    floor_z: float
    standing: bool
    points: dict[str, np.ndarray]  # the truth's landmarks, scene frame
    medial: np.ndarray  # the foot's inner side, a unit vector along y


class Regions:
    """Soft masks over the foot's vertices, worked out once on FIND's mean foot (vertex i is the same
    anatomical place on every foot)."""

    _cache: dict[int, Regions] = {}

    @classmethod
    def of(cls, model: FindModel) -> Regions:
        if id(model) not in cls._cache:
            cls._cache[id(model)] = cls(model)
        return cls._cache[id(model)]

    def __init__(self, model: FindModel):
        foot = model.foot(np.zeros(3), np.zeros(3), np.zeros(3))
        v, lm = foot.verts.astype(float), foot.landmarks(model)
        n = Mesh(foot.verts, foot.faces, foot.colors).with_normals().normals.astype(float)
        self.verts = v
        length = lm["hallux_tip"][0] - lm["heel"][0]
        up = n[:, 2]
        # big-toe nail: an ellipse on the toe's back, just behind its tip
        axis = _unit(lm["hallux_tip"] - lm["hallux_ip"])
        dorsal = _unit(np.cross(axis, [0, 1.0, 0]))
        rel = v - lm["hallux_tip"]
        along = rel @ axis
        across = v[:, 1] - (lm["hallux_tip"][1] + lm["hallux_ip"][1]) / 2
        facing = n @ dorsal
        ell = ((along + 0.0095) / 0.0085) ** 2 + (across / 0.0085) ** 2
        self.hallux_nail = _soft(1 - ell, 0.25) * _soft(facing - 0.2, 0.2)
        self.nail_edge = self.hallux_nail * _soft(along + 0.0035, 0.002)
        # lesser toes: FIND joins them; nails and the gaps between them are drawn where they would be
        gap_y = lm["hallux_ip"][1] + 0.014
        lesser = v[:, 1] > gap_y
        edges = np.linspace(gap_y, v[:, 1].max() - 0.004, 5)
        front = np.full(len(v), -1.0)
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = lesser & (v[:, 1] >= lo) & (v[:, 1] < hi)
            front[inside] = v[inside, 0].max()
        back = front - v[:, 0]  # distance behind this toe's tip
        self.lesser_nails = np.zeros(len(v))
        self.toe_gaps = np.zeros(len(v))
        for lo, hi in zip(edges[:-1], edges[1:]):
            centre, half = (lo + hi) / 2, (hi - lo) / 2
            ell = ((back - 0.006) / 0.0045) ** 2 + ((v[:, 1] - centre) / (0.55 * half)) ** 2
            self.lesser_nails += lesser * _soft(1 - ell, 0.3) * _soft(up - 0.1, 0.2)
            self.toe_gaps += lesser * np.exp(-((v[:, 1] - hi) / 0.0012) ** 2) * _soft(0.02 - back, 0.006) * (hi < edges[-1])
        self.toe_gaps += np.exp(-((v[:, 1] - gap_y + 0.004) / 0.0015) ** 2) * _soft(v[:, 0] - lm["first_mtp"][0] - 0.01, 0.006)
        # skin creases: across the big toe's back at its IP joint and at its base
        toe_dorsal = _soft(facing - 0.1, 0.2) * (np.abs(across) < 0.013)
        at_ip = (v - lm["hallux_ip"]) @ axis
        self.creases = toe_dorsal * (np.exp(-((at_ip + 0.001) / 0.0009) ** 2) + 0.6 * np.exp(-((at_ip - 0.002) / 0.0008) ** 2))
        at_mtp = v[:, 0] - lm["first_mtp"][0] - 0.008
        self.creases += 0.5 * _soft(up - 0.3, 0.2) * (v[:, 1] < gap_y - 0.006) * np.exp(-(at_mtp / 0.0012) ** 2)
        self.sole = _soft(-up - 0.35, 0.25)
        heel_x = (v[:, 0] - lm["heel"][0]) / length
        self.calluses = self.sole * (_soft(0.2 - heel_x, 0.05) + _soft(heel_x - 0.62, 0.04) * _soft(0.8 - heel_x, 0.04))
        self.calluses += _soft(0.12 - heel_x, 0.04) * _soft(0.0 - n[:, 0] - 0.3, 0.2)  # the heel's back rim
        self.calluses = np.clip(self.calluses, 0, 1)
        self.toes = _soft(v[:, 0] - lm["first_mtp"][0] - 0.005, 0.006) * _soft(up + 0.2, 0.2)
        self.dorsum = _soft(up - 0.25, 0.2) * _soft(heel_x - 0.25, 0.05) * _soft(0.7 - heel_x, 0.05)
        self.cavity = _cavity(v, n, foot.faces)
        self.height = v[:, 2] - v[:, 2].min()
        self.along = heel_x  # share of foot length from the heel
        self.span = v.max(0) - v.min(0)


def _cavity(verts: np.ndarray, normals: np.ndarray, faces: np.ndarray, steps: int = 12) -> np.ndarray:
    """0..1, how far each vertex lies below its smoothed surroundings (toe gaps, the arch, creases):
    where a real foot shades itself."""
    n = len(verts)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    adjacency = ((adjacency + adjacency.T) > 0).astype(float)
    average = sp.diags(1 / np.asarray(adjacency.sum(1)).ravel()) @ adjacency
    smooth = verts
    for _ in range(steps):
        smooth = average @ smooth
    depth = np.einsum("ij,ij->i", smooth - verts, normals)
    return np.clip(depth / np.percentile(depth, 98), 0, 1)


def dress(scene: Scene, model: FindModel, d: Dressing, rng: np.random.Generator, amount: float, seed: int) -> None:
    """Add the realism effects to ``scene`` in place."""
    regions = Regions.of(model)
    foot_mesh = scene.meshes[0]
    colors = foot_mesh.colors.astype(float)
    added = scene.extra.setdefault("realism", [])  # what was added, for contact sheets
    if rng.random() < 0.95 * amount:
        colors = _skin(colors, regions, d, rng)
        added.append("skin")
    displace = np.zeros(len(colors))
    if rng.random() < 0.12 * amount:
        colors, displace = _sandal_strap(colors, displace, regions, rng)
        added.append("strap")
    if rng.random() < 0.15 * amount:
        colors, displace = _sock(colors, displace, regions, d, scene, rng)
        added.append("sock")
    verts = foot_mesh.verts
    if d.standing and d.floor is not None:  # skin darkens where it meets the floor
        colors = colors * (1 - rng.uniform(0.2, 0.5) * np.exp(-(verts[:, 2] - d.floor_z) / 0.006))[:, None]
    if displace.any():
        normals = Mesh(verts, foot_mesh.faces, colors).with_normals().normals
        verts = (verts + normals * displace[:, None]).astype(np.float32)
    scene.meshes[0] = Mesh(verts, foot_mesh.faces, colors.astype(np.float32), None)
    if d.leg is not None and rng.random() < 0.3 * amount:
        hem = _trouser_hem(d, scene.camera.eye, rng)
        if hem is not None:
            scene.meshes.append(hem)
            added.append("hem")
    if d.standing and rng.random() < 0.25 * amount:
        other = _other_foot(scene, d, rng)
        scene.meshes += other
        if other:
            added.append("other foot")
    _floor(scene, d, rng, amount)
    _light(scene, d, rng, amount)
    if d.floor is not None and rng.random() < 0.9:
        _shadows(scene, d, rng)
        added.append("shadow")
    _phone(scene, rng, amount, seed)


# --- skin -------------------------------------------------------------------------------------------

def _skin(colors: np.ndarray, r: Regions, d: Dressing, rng: np.random.Generator) -> np.ndarray:
    tone = d.tone
    light = 1 - d.skin
    c = colors * (1 + 0.05 * _noise(r.verts, rng, 0.02)[:, None] + 0.015 * _noise(r.verts, rng, 0.006)[:, None])
    # paler, yellower soles and calluses (strongest on dark skin)
    sole = np.clip(tone * 0.55 + np.array([0.42, 0.34, 0.3]), 0, 1)
    c = _mix(c, sole, r.sole * rng.uniform(0.1, 0.2 + 0.4 * d.skin))
    if rng.random() < 0.6:
        callus = np.array([0.85, 0.75, 0.55]) * (0.7 + 0.3 * light)
        c = _mix(c, callus, r.calluses * rng.uniform(0.15, 0.45) * np.clip(0.6 + _noise(r.verts, rng, 0.008), 0, 1))
    # redness of toes and knuckles, mottled
    if rng.random() < 0.7:
        red = np.array([0.85, 0.35, 0.32]) * (0.5 + 0.5 * light)
        blotch = np.clip(0.5 + 0.7 * _noise(r.verts, rng, 0.015), 0, 1)
        c = _mix(c, red, (0.6 * r.toes + 0.25 * r.calluses + 0.15) * blotch * rng.uniform(0.1, 0.4) * (0.4 + 0.6 * light))
    # veins on the back of the foot (seen through light skin)
    if rng.random() < 0.5 * light:
        ridge = np.clip(1 - np.abs(_noise(r.verts, rng, 0.02)) / 0.08, 0, 1) ** 2
        c = _mix(c, c * np.array([0.75, 0.85, 1.05]), r.dorsum * ridge * rng.uniform(0.2, 0.6) * light)
    # the foot's shade in its own hollows
    c = c * (1 - rng.uniform(0.1, 0.35) * r.cavity)[:, None]
    # creases and the gaps between the lesser toes
    shade = rng.uniform(0.2, 0.5)
    c = c * (1 - shade * np.clip(r.creases, 0, 1))[:, None] * (1 - rng.uniform(0.3, 0.6) * np.clip(r.toe_gaps, 0, 1))[:, None]
    # hair on the toe and the top of the foot
    if rng.random() < 0.3:
        density = rng.uniform(0.02, 0.12)
        hairs = (rng.random(len(c)) < density) * np.clip(r.dorsum * 0.5 + r.toes * (r.along < 0.95), 0, 1)
        c = _mix(c, HAIR[rng.integers(len(HAIR))], hairs * rng.uniform(0.1, 0.3))
    # a bruise, a scratch or a plaster somewhere
    if rng.random() < 0.15:
        centre = r.verts[rng.integers(len(r.verts))]
        dist = np.linalg.norm(r.verts - centre, axis=1) / rng.uniform(0.006, 0.02)
        spot = _soft(1 - dist + 0.3 * _noise(r.verts, rng, 0.006), 0.3)
        colour = [np.array([0.45, 0.25, 0.4]), np.array([0.6, 0.55, 0.3]), np.array([0.6, 0.12, 0.1])][rng.integers(3)]
        c = _mix(c, colour, spot * rng.uniform(0.3, 0.7))
    if rng.random() < 0.08:  # a plaster on a lesser toe, the heel's back or the top of the foot
        pick = np.flatnonzero([r.lesser_nails > 0.5, r.calluses > 0.5, r.dorsum > 0.7][rng.integers(3)])
        if len(pick):
            centre = r.verts[pick[rng.integers(len(pick))]]
            box = np.abs(r.verts - centre) / [rng.uniform(0.006, 0.012), rng.uniform(0.008, 0.015), 0.02]
            c = _mix(c, np.array([0.85, 0.7, 0.55]) * rng.uniform(0.8, 1.1), _soft(1 - box.max(1), 0.1))
    # nails: pink-white with a paler free edge, sometimes polished
    nail = np.clip(tone * 0.6 + np.array([0.42, 0.33, 0.32]), 0, 1)
    polish = POLISH[rng.integers(len(POLISH))] if rng.random() < 0.3 else None
    nails = np.clip(r.hallux_nail + r.lesser_nails, 0, 1)
    if polish is None:
        c = _mix(c, nail, nails * rng.uniform(0.5, 0.9))
        c = _mix(c, np.array([0.95, 0.93, 0.88]), r.nail_edge * rng.uniform(0.3, 0.8))
    else:
        c = _mix(c, polish, nails * rng.uniform(0.85, 1.0))
    return np.clip(c, 0, 1)


def _sandal_strap(colors, displace, r: Regions, rng):
    """A strap across the midfoot (well behind the big-toe joint) or round the ankle, standing off the skin."""
    colour = STRAPS[rng.integers(len(STRAPS))] * rng.uniform(0.8, 1.1)
    if rng.random() < 0.6:
        centre, width = rng.uniform(0.53, 0.6), rng.uniform(0.025, 0.05)  # clear of first_metatarsal (47%) and first_mtp (72%)
        band = _soft(width / 2 - np.abs(r.along - centre), 0.006) * (1 - r.sole)
    else:
        lo = rng.uniform(0.5, 0.7) * r.span[2]
        band = _soft(0.012 - np.abs(r.height - lo), 0.003) * (r.along < 0.45)
    return _mix(colors, colour, band), displace + band * rng.uniform(0.0015, 0.003)


def _sock(colors, displace, r: Regions, d: Dressing, scene: Scene, rng):
    """An ankle sock, or one rolled down to the ankle: it covers the ankle and the leg's first rings."""
    colour = SOCKS[rng.integers(len(SOCKS))] * rng.uniform(0.8, 1.1)
    top = r.height.max()
    cuff = top - rng.uniform(0.02, 0.06)
    band = _soft(r.height - cuff, 0.003) * (r.along < 0.5)
    weave = 1 + 0.08 * np.sin(r.height * rng.uniform(900, 1500))
    colors = _mix(colors, np.clip(colour * weave[:, None], 0, 1), band)
    if d.leg is not None:  # the leg's lowest rings in the same sock
        leg = scene.meshes[d.leg]
        rings = leg.colors.reshape(-1, 24, 3).copy()  # synth.leg: rings of 24 vertices
        rings[:rng.integers(1, 4)] = colour
        scene.meshes[d.leg] = Mesh(leg.verts, leg.faces, rings.reshape(-1, 3).astype(np.float32), leg.normals)
    return colors, displace + band * rng.uniform(0.001, 0.004)


def _trouser_hem(d: Dressing, eye: np.ndarray, rng) -> Mesh | None:
    """Trousers falling over the ankle, wider than the leg, their hem above the heel; None where they would
    stand between the camera and a landmark (the truth says every point is seen)."""
    from synth import leg

    colour = DENIM[rng.integers(len(DENIM))] if rng.random() < 0.5 else rng.uniform(0.05, 0.8, 3)
    rings = 10
    along = [colour * (0.75 if i == 0 else rng.uniform(0.9, 1.05)) for i in range(rings)]
    direction = d.leg_dir / np.linalg.norm(d.leg_dir)
    bottom = d.ankle + direction * rng.uniform(-0.01, 0.06)
    radius, length = d.ankle_r * rng.uniform(1.5, 2.1), rng.uniform(0.25, 0.4)
    # sight lines from the camera to each landmark (all but their last 5 mm) against the widest tube
    t = np.linspace(0, 1, 48)[:, None, None]
    points = np.stack(list(d.points.values()))[None]
    ends = points - 0.005 * (points - eye) / np.linalg.norm(points - eye, axis=-1, keepdims=True)
    sight = eye + t * (ends - eye)
    axial = (sight - bottom) @ direction
    off_axis = np.linalg.norm(sight - bottom - axial[..., None] * direction, axis=-1)
    if np.any((axial > -0.01) & (axial < length) & (off_axis < 1.5 * radius)):
        return None
    return leg(bottom, direction, radius, length, np.clip(along, 0, 1))


def _other_foot(scene: Scene, d: Dressing, rng) -> list[Mesh]:
    """The other foot and leg, stepped forward or back beside this one (its mirror image about the body's
    midline); none where they could come between the camera and a landmark."""
    midline = scene.meshes[0].verts[:, 1].mean() + d.medial[1] * rng.uniform(0.08, 0.14)
    shift = rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.35)
    others = []
    for index in [0] + ([d.leg] if d.leg is not None else []):
        mesh = scene.meshes[index]
        verts = np.c_[mesh.verts[:, 0] + shift, 2 * midline - mesh.verts[:, 1], mesh.verts[:, 2]].astype(np.float32)
        colors = np.clip(mesh.colors * rng.uniform(0.95, 1.05), 0, 1).astype(np.float32)
        others.append(Mesh(verts, mesh.faces[:, ::-1].copy(), colors, None))
    clip = np.c_[np.concatenate([m.verts[::5] for m in others]), np.ones(sum(len(m.verts[::5]) for m in others))]
    clip = clip @ scene.camera.mvp().T
    marks = np.c_[np.stack(list(d.points.values())), np.ones(len(d.points))] @ scene.camera.mvp().T
    if (clip[:, 3] <= scene.camera.near).any():
        return []
    hull = cv2.convexHull((clip[:, :2] / clip[:, 3:]).astype(np.float32))
    for mark in marks:
        inside = cv2.pointPolygonTest(hull, tuple(float(v) for v in mark[:2] / mark[3]), True) > -0.05
        if inside and mark[3] > clip[:, 3].min():
            return []
    return others


# --- floor, light, shadows -------------------------------------------------------------------------

def floor_texture(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, float]:
    """A floor, rug, paper, bed sheet or couch texture and the metres one tile spans."""
    kind = rng.choice(["planks", "tiles", "concrete", "carpet", "rug", "sheet", "couch"],
                      p=[0.25, 0.15, 0.12, 0.12, 0.12, 0.14, 0.1])
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == "planks":
        base = WOODS[rng.integers(len(WOODS))] * rng.uniform(0.8, 1.15) + rng.normal(0, 0.03, 3)
        planks = int(rng.integers(4, 8))
        row = np.floor(yy * planks)
        shift = (row * 0.37 + rng.uniform()) % 1
        board = np.floor((xx + shift) * 2)
        tint = 1 + 0.12 * np.sin(row * 12.9 + board * 7.3)
        streaks = _noise2(size, rng, 2)[:, :1] * 0.5 + _noise2(size, rng, 24)  # long streaks along the boards
        grain = 1 + 0.05 * np.sin((yy * planks * 60 + 2 * streaks) * rng.uniform(1, 3)) + 0.04 * streaks
        img = base * (tint * grain)[..., None]
        img[(yy * planks % 1) < 0.02] *= 0.55
        img[((xx + shift) * 2 % 1) < 0.006] *= 0.6
        span = planks * rng.uniform(0.12, 0.2)
    elif kind == "tiles":
        base = rng.uniform(0.35, 0.95, 3) * 0.3 + rng.uniform(0.35, 0.9) * 0.7
        img = base * (1 + 0.05 * _noise2(size, rng, 32) + 0.03 * _noise2(size, rng, 4))[..., None]
        grout = (np.minimum(xx % 0.5, yy % 0.5) < 0.008)
        img[grout] = base * rng.uniform(0.5, 1.2)
        span = rng.uniform(0.6, 1.2)
    elif kind == "concrete":
        base = np.ones(3) * rng.uniform(0.35, 0.75) + rng.normal(0, 0.02, 3)
        img = base * (1 + 0.12 * _noise2(size, rng, 8) + 0.08 * _noise2(size, rng, 2) + 0.1 * _noise2(size, rng, 48))[..., None]
        span = rng.uniform(0.5, 1.5)
    elif kind == "carpet":
        base = rng.uniform(0.2, 0.85, 3) * 0.5 + rng.uniform(0.2, 0.8) * 0.5
        img = base * (1 + 0.25 * _noise2(size, rng, 1) + 0.1 * _noise2(size, rng, 24))[..., None]
        span = rng.uniform(0.2, 0.5)
    elif kind == "rug":  # an ornamental rug: medallions, a border, many colours
        palette = RUG[rng.permutation(len(RUG))[:4]] * rng.uniform(0.8, 1.1)
        u, v = np.abs(xx - 0.5), np.abs(yy - 0.5)
        pattern = (np.sin(u * rng.uniform(20, 60)) * np.cos(v * rng.uniform(20, 60)) + np.sin((u + v) * rng.uniform(30, 80))
                   + 0.5 * np.sin(u * rng.uniform(150, 250)) * np.sin(v * rng.uniform(150, 250)))
        index = np.digitize(pattern, [-0.7, 0.2, 0.9])
        img = palette[index]
        border = np.maximum(u, v) > 0.44
        img[border] = palette[(index[border] + 1) % 4] * 0.7
        img = img * (1 + 0.15 * _noise2(size, rng, 1))[..., None]
        span = rng.uniform(0.6, 1.4)
    elif kind == "sheet":  # a bed sheet: pale, with soft folds
        base = np.ones(3) * rng.uniform(0.75, 0.97) - rng.uniform(0, 0.15, 3) * (rng.random() < 0.5)
        folds = _noise2(size, rng, 40) * 0.5 + np.sin((xx * rng.uniform(2, 6) + _noise2(size, rng, 64)) * 2 * np.pi) * 0.5
        img = base * (1 + 0.12 * folds + 0.02 * _noise2(size, rng, 1))[..., None]
        span = rng.uniform(0.6, 1.5)
    else:  # a clinical couch: vinyl, often under a strip of paper
        base = [np.array([0.15, 0.3, 0.4]), np.array([0.08, 0.08, 0.09]), np.array([0.55, 0.6, 0.65]),
                np.array([0.2, 0.35, 0.25])][rng.integers(4)] * rng.uniform(0.8, 1.2)
        img = base * (1 + 0.05 * _noise2(size, rng, 16))[..., None]
        if rng.random() < 0.7:
            paper = np.abs(xx - 0.5) < rng.uniform(0.2, 0.4)
            img[paper] = np.array([0.93, 0.93, 0.9]) * (1 + 0.04 * _noise2(size, rng, 12))[paper][:, None]
        span = rng.uniform(1.0, 2.0)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), float(span)


def wall_texture(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, float]:
    """What stands behind a foot: a painted wall, or the bed, couch, sofa or cupboard it is held over."""
    kind = rng.choice(["paint", "furniture"], p=[0.6, 0.4])
    if kind == "furniture":
        return floor_texture(rng)
    paint = np.array([[0.92, 0.9, 0.85], [0.85, 0.8, 0.7], [0.75, 0.75, 0.75], [0.8, 0.85, 0.88], [0.88, 0.82, 0.75],
                      [0.7, 0.78, 0.7], [0.95, 0.95, 0.95]])[rng.integers(7)] * rng.uniform(0.7, 1.05)
    img = paint * (1 + 0.03 * _noise2(size, rng, 2) + 0.04 * _noise2(size, rng, 32))[..., None]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), float(rng.uniform(0.5, 2.0))


def _floor(scene: Scene, d: Dressing, rng, amount: float) -> None:
    if rng.random() < 0.8 * amount:  # the wall behind: no garish clutter in most rooms
        wall = scene.quads[0]
        wall.texture, span = wall_texture(rng)
        scene.extra["realism"].append("wall")
        wall.uv_scale = np.linalg.norm(wall.corners[1] - wall.corners[0]) / span
    if d.floor is None:
        return
    floor = scene.quads[d.floor]
    extent = floor.corners[:, 0].max() - floor.corners[:, 0].min()
    if rng.random() < 0.85 * amount:
        floor.texture, span = floor_texture(rng)
        scene.extra["realism"].append("floor")
        floor.uv_scale = extent / span
        floor.brightness = rng.uniform(0.75, 1.15)
    if rng.random() < 0.45 * amount:  # the floor runs to the horizon: no wall just behind the foot
        scene.quads.pop(0)
        d.floor -= 1
        floor = scene.quads[d.floor]
        grow = 15 / extent
        centre = floor.corners.mean(0)
        floor.corners = centre + (floor.corners - centre) * [grow, grow, 1]
        floor.uv_scale *= grow
        scene.background = tuple(rng.uniform(0.2, 0.8) * rng.uniform(0.85, 1.0, 3))
        scene.extra["realism"].append("horizon")
    foot_centre = scene.meshes[0].verts.mean(0)[:2]
    if d.standing and rng.random() < 0.2 * amount:  # a sheet of paper under the foot
        paper = np.full((16, 16, 3), 255 * rng.uniform(0.88, 0.98), np.uint8)
        half = (rng.uniform(0.16, 0.2), rng.uniform(0.11, 0.16))
        scene.quads.insert(d.floor + 1, _lying(foot_centre + rng.normal(0, 0.03, 2), half, rng.uniform(0, np.pi),
                                               d.floor_z + 0.0008, paper, floor.brightness * rng.uniform(0.9, 1.1)))
        scene.extra["realism"].append("paper")
    if d.standing and rng.random() < 0.3 * amount:  # things on the floor beside the foot: a card, a phone, a note
        for _ in range(rng.integers(1, 3)):
            texture, half = _floor_object(rng)
            away = rng.uniform(0.12, 0.35) * _unit(np.r_[rng.normal(0, 1, 2), 0])[:2]
            scene.quads.insert(d.floor + 1, _lying(foot_centre + away, half, rng.uniform(0, np.pi), d.floor_z + 0.0012,
                                                   texture, floor.brightness))
        scene.extra["realism"].append("objects")


def _lying(centre: np.ndarray, half: tuple[float, float], angle: float, z: float, texture: np.ndarray,
           brightness: float) -> TexturedQuad:
    """A flat rectangle on the floor."""
    axes = np.array([[np.cos(angle), np.sin(angle), 0], [-np.sin(angle), np.cos(angle), 0]])
    corners = [np.r_[centre, z] + sx * half[0] * axes[0] + sy * half[1] * axes[1] for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    return TexturedQuad(np.array(corners), texture, 1.0, brightness)


def _floor_object(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """A bank card, a phone, a note or a book: its picture and half its size in metres."""
    kind = rng.choice(["card", "phone", "note", "book"])
    yy, xx = np.mgrid[0:40, 0:64] / np.array([40.0, 64.0])[:, None, None]
    if kind == "card":
        a, b = rng.uniform(0, 1, (2, 3))
        img = a * (1 - xx[..., None]) + b * xx[..., None]
        img[12:20, 8:16] = [0.8, 0.7, 0.4]  # the chip
        img[30:33, 8:40] = np.clip(a * 0.3 + 0.7, 0, 1)
        return _u8(img), (0.043, 0.027)
    if kind == "phone":
        img = np.ones((40, 64, 3)) * rng.uniform(0.02, 0.15) + 0.15 * (xx + yy)[..., None] * rng.uniform(0, 1)
        img[2:38, 2:62] *= 0.7
        return _u8(img), (0.075, 0.036)
    if kind == "note":
        img = np.ones((40, 64, 3)) * rng.uniform(0.85, 0.97)
        for row in range(6, 36, 5):
            img[row, 6:int(rng.integers(20, 58))] *= 0.5
        return _u8(img), (0.07, 0.05)
    img = np.ones((40, 64, 3)) * rng.uniform(0.1, 0.8, 3)
    img[:, :4] *= 0.6
    return _u8(img), (0.11, 0.075)


def _u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _light(scene: Scene, d: Dressing, rng, amount: float) -> None:
    """Flash at the camera, a dim warm room, or the sun; otherwise the sampled lights stay."""
    camera = scene.camera
    towards_camera = _unit(camera.eye - camera.target)
    kind = rng.choice(["flash", "dim", "sun", "keep"], p=[0.12 * amount, 0.15 * amount, 0.12 * amount, 1 - 0.39 * amount])
    lights = scene.lights
    if kind == "flash":
        scene.lights = Lights(key_dir=_unit(towards_camera + rng.normal(0, 0.05, 3)), key_col=np.ones(3) * rng.uniform(0.45, 0.7),
                              fill_dir=lights.fill_dir, fill_col=np.ones(3) * rng.uniform(0.0, 0.08),
                              ambient=np.array([1.0, 0.85, 0.7]) * rng.uniform(0.03, 0.12), shininess=rng.uniform(15, 50),
                              spec_strength=rng.uniform(0.1, 0.3), falloff=1.0,
                              falloff_d0=float(np.linalg.norm(camera.eye - camera.target)))
        scene.background = tuple(np.ones(3) * rng.uniform(0.0, 0.08))
    elif kind == "dim":
        warm = np.array([1.0, rng.uniform(0.6, 0.78), rng.uniform(0.35, 0.55)])
        scene.lights = Lights(key_dir=lights.key_dir, key_col=warm * rng.uniform(0.2, 0.4), fill_dir=lights.fill_dir,
                              fill_col=warm * rng.uniform(0.02, 0.1), ambient=warm * rng.uniform(0.08, 0.18),
                              shininess=lights.shininess, spec_strength=lights.spec_strength * 0.5)
        for quad in scene.quads:
            quad.brightness *= rng.uniform(0.35, 0.6)
        scene.background = tuple(np.asarray(scene.background) * 0.3)
    elif kind == "sun":
        az = rng.uniform(0, 2 * np.pi)
        sun = _unit(np.array([np.cos(az), np.sin(az), rng.uniform(0.6, 2.0)]))
        scene.lights = Lights(key_dir=sun, key_col=np.array([1.0, 0.97, 0.9]) * rng.uniform(0.9, 1.2), fill_dir=np.array([0, 0, 1.0]),
                              fill_col=np.array([0.55, 0.65, 0.85]) * rng.uniform(0.1, 0.25),
                              ambient=np.array([0.6, 0.7, 0.9]) * rng.uniform(0.15, 0.3), shininess=rng.uniform(10, 30),
                              spec_strength=rng.uniform(0.05, 0.2))
    scene.extra["light"] = str(kind)
    if kind != "keep":
        scene.extra["realism"].append(str(kind))


def _shadows(scene: Scene, d: Dressing, rng) -> None:
    """A multiplied quad on the floor: the shadow every mesh casts along the key light, plus (for a foot
    on the floor) the dark contact where the sole meets it."""
    lights = scene.lights
    kind = scene.extra.get("light", "keep")
    meshes = scene.meshes
    centre = scene.meshes[0].verts.mean(0).astype(float)
    side, n = 0.9, 160
    lo = centre[:2] - side / 2
    grid = np.zeros((n, n), np.float32)
    key = np.asarray(lights.key_dir, float)
    if kind == "flash":  # the flash is at the lens: its shadow falls straight behind the foot
        key = _unit(scene.camera.eye - centre)
    strength = float(np.clip(np.linalg.norm(lights.key_col) / (np.linalg.norm(lights.key_col) + 1.7 * np.linalg.norm(lights.ambient)
                                                                  + np.linalg.norm(lights.fill_col)), 0, 0.85))
    if key[2] > 0.15:
        for m in meshes:
            h = m.verts[:, 2] - d.floor_z
            flat = ((m.verts[:, :2] - key[:2] * (h / key[2])[:, None]) - lo) / side * n
            if len(m.verts) > 5000:  # a foot's vertices lie closer than a cell: splat them, close the gaps
                cells = np.round(flat).astype(int)
                cells = cells[((cells >= 0) & (cells < n)).all(1)]
                grid[cells[:, 1], cells[:, 0]] = 1.0
                grid = cv2.morphologyEx(grid, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
            else:  # the other meshes are coarse: fill their triangles
                tri = np.round(flat[m.faces] * 4).astype(np.int32)
                cv2.fillPoly(grid, list(tri), 1.0, lineType=cv2.LINE_8, shift=2)
        blur = {"sun": 0.6, "flash": 1.0}.get(kind, rng.uniform(2.5, 7.0))
        grid = cv2.GaussianBlur(grid, (0, 0), blur) * strength * rng.uniform(0.6, 1.0)
    if d.standing:
        near = scene.meshes[0].verts.astype(float)
        weight = np.exp(-(near[:, 2] - d.floor_z) / 0.006)
        cells = np.clip(np.floor((near[:, :2] - lo) / side * n).astype(int), 0, n - 1)
        contact = np.zeros((n, n), np.float32)
        np.add.at(contact, (cells[:, 1], cells[:, 0]), weight.astype(np.float32))
        contact = cv2.GaussianBlur(np.minimum(contact, 3.0) / 3.0, (0, 0), 2.0)
        grid = np.maximum(grid, np.clip(contact * rng.uniform(1.0, 2.0), 0, 0.85))
    fade = np.minimum.outer(*(2 * [np.clip(np.minimum(np.arange(n), n - 1 - np.arange(n)) / 8, 0, 1)]))
    tint = np.array([0.95, 0.97, 1.0]) if kind == "sun" else np.ones(3)
    shade = 1 - (grid * fade)[..., None] * tint
    corners = np.array([[lo[0], lo[1], 0], [lo[0] + side, lo[1], 0], [lo[0] + side, lo[1] + side, 0], [lo[0], lo[1] + side, 0]])
    corners[:, 2] = d.floor_z + 0.0005
    scene.quads.append(TexturedQuad(corners, (np.clip(shade, 0, 1) * 255).astype(np.uint8), 1.0, 1.0, multiply=True))


# --- the phone ---------------------------------------------------------------------------------------

def _phone(scene: Scene, rng, amount: float, seed: int) -> None:
    if rng.random() < 0.6 * amount:
        wide = rng.random() < 0.2
        k1 = rng.uniform(0.12, 0.3) if wide else rng.uniform(0.0, 0.1)
        scene.camera.distortion = (float(k1), float(rng.uniform(-0.02, 0.03)))
        scene.extra["realism"].append("lens")
    if rng.random() < 0.9 * amount:
        look = dict(exposure=rng.uniform(0.38, 0.55), hdr=rng.uniform(0.0, 0.7), contrast=rng.uniform(0.9, 1.25),
                    saturation=rng.uniform(0.85, 1.2), white=rng.uniform(0.9, 1.1, 3) * [1, 1, 1],
                    sharpen=rng.uniform(0.0, 1.2), sharpen_sigma=rng.uniform(0.6, 1.5), noise=rng.uniform(0.003, 0.02),
                    chroma=rng.uniform(0.0, 0.02), vignette=rng.uniform(0.0, 0.35), uneven=rng.uniform(0.0, 0.25), jpeg=int(rng.integers(75, 97)), seed=seed)
        if scene.extra.get("light") == "dim":  # white balance leaves some of the warmth; high gain, more noise
            look.update(white=np.array([rng.uniform(0.75, 0.95), 1.0, rng.uniform(1.05, 1.4)]),
                        noise=rng.uniform(0.008, 0.025), chroma=rng.uniform(0.01, 0.03))
        scene.develop = partial(develop, **look)
        scene.extra["realism"].append("phone")


def develop(image: np.ndarray, exposure: float, hdr: float, contrast: float, saturation: float, white: np.ndarray,
            sharpen: float, sharpen_sigma: float, noise: float, chroma: float, vignette: float, uneven: float, jpeg: int,
            seed: int
            ) -> np.ndarray:
    """A phone's processing: auto exposure, white balance, local (HDR) tone, an S-curve, saturation,
    vignetting and uneven light, sensor noise, sharpening with its halos, and the JPEG it saves."""
    h, w = image.shape[:2]
    rng = np.random.default_rng([seed, 41, h, w])
    x = (image.astype(np.float32) / 255) ** 2.2 * np.asarray(white, np.float32)
    lum = x @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    centre = lum[h // 4:3 * h // 4, w // 4:3 * w // 4]  # metered on the brighter part of the middle (the subject)
    low, high = np.percentile(centre, [75, 99])
    gain = np.clip(min((exposure + 0.12) ** 2.2 / max(low, 1e-4), 1.2 / max(high, 1e-4)), 0.4, 4.0)  # highlights kept
    x = x * gain
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    x = x * (1 - vignette * r2)[..., None].astype(np.float32)
    pool = cv2.resize(rng.normal(0, uneven, (3, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    x = x * np.exp(pool)[..., None]  # light falls unevenly across a room
    sigma = max(h, w) / 12
    base = cv2.GaussianBlur(np.log(lum * gain + 1e-3), (0, 0), sigma)
    x = x * np.exp(-hdr * 0.5 * (base - np.log(0.18)))[..., None]  # lift shadows, hold highlights
    x = x + rng.normal(0, 1, x.shape).astype(np.float32) * (noise * np.sqrt(gain) * np.sqrt(np.clip(x, 0, 1) + 0.02))
    if chroma:
        blotch = cv2.resize(rng.normal(0, chroma * np.sqrt(gain), (max(2, h // 6), max(2, w // 6), 3)).astype(np.float32), (w, h))
        x = x * (1 + blotch)
    y = np.clip(x, 0, None) / (1 + np.clip(x, 0, None)) * 2  # filmic shoulder
    y = np.clip(y, 0, 1) ** (1 / 2.2)
    y = 0.5 + (y - 0.5) * contrast
    grey = y.mean(2, keepdims=True)
    y = grey + (y - grey) * saturation
    if sharpen:
        y = y + sharpen * (y - cv2.GaussianBlur(y, (0, 0), sharpen_sigma))
    out = (np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8)
    encoded = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].copy()


# --- helpers ---------------------------------------------------------------------------------------

def _noise(points: np.ndarray, rng: np.random.Generator, cell: float) -> np.ndarray:
    """Smooth value noise (about -1..1) at 3D points, varying over ``cell`` metres."""
    lo = points.min(0)
    shape = np.ceil((points.max(0) - lo) / cell).astype(int) + 2
    grid = rng.normal(0, 1, shape)
    return map_coordinates(grid, ((points - lo) / cell).T, order=1, mode="nearest") * 0.8


def _noise2(size: int, rng: np.random.Generator, scale: int) -> np.ndarray:
    small = rng.normal(0, 1, (max(2, size // scale), max(2, size // scale))).astype(np.float32)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def _mix(colors: np.ndarray, target, weight) -> np.ndarray:
    weight = np.clip(np.asarray(weight, float), 0, 1)[:, None]
    return colors * (1 - weight) + np.asarray(target, float) * weight


def _soft(x, width):
    return np.clip(0.5 + np.asarray(x) / (2 * width), 0, 1)


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)
