"""Appearance: procedural surfaces in world units (floors, couches, walls) and skin detail on the foot.

Every pattern is a function of metres on the surface (floor) or on FIND's template (skin), so a
plank, a tile or a toe crease keeps its physical size whatever the camera does. Detail finer than
a pixel's footprint is faded out instead of aliasing.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates


class Noise:
    """Smooth value noise in 2D and 3D (zero mean, unit spread), tiled."""

    def __init__(self, rng: np.random.Generator):
        self.g2 = self._grid(rng, (256, 256), 1.2)
        self.g3 = self._grid(rng, (40, 40, 40), 0.9)

    @staticmethod
    def _grid(rng, shape, sigma):
        g = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
        return ((g - g.mean()) / g.std()).astype(np.float32)

    def n2(self, u: np.ndarray, v: np.ndarray, cell: float) -> np.ndarray:
        return map_coordinates(self.g2, [v / cell, u / cell], order=1, mode="grid-wrap")

    def n3(self, p: np.ndarray, cell: float) -> np.ndarray:
        return map_coordinates(self.g3, (p / cell).T, order=1, mode="grid-wrap")

    def fbm2(self, u, v, cell: float, footprint, octaves: int = 4) -> np.ndarray:
        out, amp = 0.0, 1.0
        for k in range(octaves):
            c = cell / 2 ** k
            out = out + amp * fade(c, footprint) * self.n2(u + 17.3 * k, v - 5.1 * k, c)
            amp *= 0.55
        return out


def fade(period, footprint):
    """1 where a pattern of this period is resolved, 0 where a pixel covers half a period or more."""
    return np.clip(2.0 - 4.0 * footprint / period, 0.0, 1.0)


def _hash(i, j, salt: float) -> np.ndarray:
    return np.modf(np.abs(np.sin(i * 12.9898 + j * 78.233 + salt) * 43758.5453))[0]


def _rotated(u, v, deg):
    t = np.radians(deg)
    return np.cos(t) * u + np.sin(t) * v, -np.sin(t) * u + np.cos(t) * v


def srgb_to_linear(c) -> np.ndarray:
    c = np.asarray(c, float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


WOODS = srgb_to_linear([[0.72, 0.55, 0.36], [0.55, 0.36, 0.21], [0.36, 0.22, 0.13], [0.80, 0.68, 0.52], [0.55, 0.52, 0.48]])
TILES = srgb_to_linear([[0.92, 0.92, 0.9], [0.82, 0.76, 0.66], [0.55, 0.55, 0.55], [0.72, 0.42, 0.30], [0.3, 0.3, 0.32]])
TEXTILES = srgb_to_linear([[0.75, 0.2, 0.2], [0.2, 0.3, 0.55], [0.85, 0.8, 0.7], [0.3, 0.45, 0.35], [0.5, 0.45, 0.6],
                           [0.9, 0.9, 0.92], [0.25, 0.22, 0.2], [0.85, 0.6, 0.3]])
PAINT = srgb_to_linear([[0.93, 0.93, 0.9], [0.9, 0.86, 0.78], [0.8, 0.8, 0.8], [0.75, 0.82, 0.88], [0.78, 0.84, 0.74],
                        [0.95, 0.9, 0.85]])
VINYL = srgb_to_linear([[0.1, 0.45, 0.5], [0.12, 0.16, 0.3], [0.08, 0.08, 0.08], [0.45, 0.5, 0.55]])


class Surfaces:
    """The floor (or couch) and wall of one scene: albedo and gloss at world points."""

    def __init__(self, rng: np.random.Generator, floor_kind: str, near_foot: np.ndarray):
        self.rng, self.noise, self.kind = rng, Noise(rng), floor_kind
        self.angle = rng.uniform(0, 180)
        self.near = near_foot[:2]
        self.under = rng.choice(["wood", "rug", "carpet", "tiles"]) if floor_kind == "paper" else None
        def pick(table):  # a palette colour, a little greyer and brighter or darker
            c = table[rng.integers(len(table))]
            return (0.75 * c + 0.25 * c.mean()) * rng.uniform(0.8, 1.15) * rng.uniform(0.95, 1.05, 3)
        self.colour = pick
        self.params = {name: self.colour(t) for name, t in
                       (("wood", WOODS), ("tiles", TILES), ("rug", TEXTILES), ("rug2", TEXTILES), ("paint", PAINT),
                        ("vinyl", VINYL), ("fabric", TEXTILES), ("skirting", PAINT[:1]))}
        self.sizes = dict(plank=rng.uniform(0.08, 0.2), board=rng.uniform(0.6, 1.6), tile=rng.uniform(0.15, 0.6),
                          grout=rng.uniform(0.002, 0.006), stripe=rng.uniform(0.03, 0.2), skirting=rng.uniform(0.05, 0.12),
                          paper=(0.297, 0.42) if rng.random() < 0.5 else (0.21, 0.297), paper_angle=rng.uniform(-30, 30),
                          paper_shift=rng.uniform(-0.05, 0.05, 2), grid=rng.random() < 0.25,
                          pattern=rng.choice(["stripes", "diamonds", "plain"]), cupboard=rng.random() < 0.2)

    def floor(self, u, v, fp) -> tuple[np.ndarray, np.ndarray]:
        kind = self.kind
        if kind == "paper":
            a, b = _rotated(u - self.near[0] - self.sizes["paper_shift"][0], v - self.near[1] - self.sizes["paper_shift"][1],
                            self.sizes["paper_angle"])
            half = np.array(self.sizes["paper"])[::-1] / 2 * 1.1
            inside = (np.abs(a) < half[0]) & (np.abs(b) < half[1])
            albedo, gloss = self._material(self.under, u, v, fp)
            paper = np.array([0.82, 0.83, 0.84]) * (1 + 0.03 * self.noise.fbm2(u, v, 0.004, fp, 2))[..., None]
            if self.sizes["grid"]:
                line = np.minimum(np.abs(np.modf(a / 0.01)[0]), np.abs(np.modf(b / 0.01)[0])) < 0.06
                paper = paper * (1 - 0.35 * (line * fade(0.01, fp))[..., None])
            albedo = np.where(inside[..., None], paper, albedo)
            return albedo, np.where(inside, 0.05, gloss)
        return self._material(kind, u, v, fp)

    def _material(self, kind, u, v, fp):
        n, s, p = self.noise, self.sizes, self.params
        a, b = _rotated(u, v, self.angle)
        ones = np.ones_like(u)[..., None]
        if kind == "wood":
            plank = np.floor(b / s["plank"])
            shift = _hash(plank, 0, 1.0) * s["board"]
            board = np.floor((a + shift) / s["board"])
            tone = 0.8 + 0.4 * _hash(plank, board, 2.0)
            grain = n.fbm2(a / 40, b, 0.004, fp, 3)  # streaks along the plank
            albedo = p["wood"] * tone[..., None] * (1 + 0.16 * grain)[..., None]
            across = np.abs(np.modf(b / s["plank"])[0])
            gap = np.minimum(across, 1 - across) * s["plank"] < 0.0008
            albedo = albedo * (1 - 0.55 * (gap * fade(0.004, fp)))[..., None]
            return albedo, 0.25 * ones[..., 0]
        if kind == "tiles":
            ta, tb = np.modf(np.abs(a) / s["tile"])[0], np.modf(np.abs(b) / s["tile"])[0]
            edge = np.minimum(np.minimum(ta, 1 - ta), np.minimum(tb, 1 - tb)) * s["tile"]
            grout = (edge < s["grout"] / 2) * fade(0.01, fp)
            tone = 0.9 + 0.2 * _hash(np.floor(a / s["tile"]), np.floor(b / s["tile"]), 3.0)
            albedo = p["tiles"] * (tone * (1 + 0.05 * n.fbm2(u, v, 0.01, fp)))[..., None]
            albedo = albedo * (1 - grout[..., None]) + grout[..., None] * p["tiles"].mean() * 0.55
            return albedo, 0.6 * (1 - grout)
        if kind in ("rug", "carpet", "sofa", "bedsheet"):
            base = p["fabric"] if kind != "rug" else p["rug"]
            if kind == "bedsheet":
                base = PAINT[self.rng.integers(len(PAINT))] if not hasattr(self, "_sheet") else self._sheet
                self._sheet = base
            albedo = base * ones
            if kind == "rug" and s["pattern"] != "plain":
                wobble = 0.004 * n.n2(u, v, 0.01)
                q = (a + wobble) / s["stripe"] if s["pattern"] == "stripes" else (np.abs(a) + np.abs(b) + wobble) / s["stripe"]
                mix = (np.sin(2 * np.pi * q) > 0.3) * fade(s["stripe"], fp)
                albedo = albedo * (1 - mix[..., None]) + p["rug2"] * mix[..., None]
            fibre = {"rug": 0.25, "carpet": 0.3, "sofa": 0.12, "bedsheet": 0.04}[kind]
            cell = {"rug": 0.0015, "carpet": 0.0012, "sofa": 0.002, "bedsheet": 0.001}[kind]
            detail = fibre * n.fbm2(u, v, cell, fp, 2) + 0.06 * n.fbm2(u, v, 0.05, fp, 2)
            if kind == "bedsheet":  # folds: long soft ridges shade the sheet
                fold = np.abs(n.fbm2(a / 3, b, 0.03, fp, 2))
                detail = detail - 0.18 * np.exp(-fold * 3)
            return albedo * (1 + detail)[..., None], np.zeros_like(u)
        if kind == "clinical":
            strip = np.abs(b - self._along_foot(b)) < 0.27
            crinkle = np.abs(n.fbm2(a, b / 6, 0.02, fp, 3))
            paper = np.array([0.8, 0.81, 0.8]) * (1 - 0.12 * np.exp(-crinkle * 4))[..., None]
            vinyl = p["vinyl"] * (1 + 0.05 * n.fbm2(u, v, 0.002, fp, 2))[..., None]
            return np.where(strip[..., None], paper, vinyl), np.where(strip, 0.05, 0.45)
        # concrete
        albedo = np.array([0.32, 0.31, 0.29]) * (1 + 0.12 * n.fbm2(u, v, 0.08, fp, 5))[..., None]
        return albedo, 0.1 * ones[..., 0]

    def _along_foot(self, b):
        return _rotated(self.near[0], self.near[1], self.angle)[1] + 0.05

    def wall(self, across, height, fp) -> tuple[np.ndarray, np.ndarray]:
        """``across``: metres along the wall; ``height``: metres above the floor."""
        n, s, p = self.noise, self.sizes, self.params
        albedo = p["paint"] * (1 + 0.03 * n.fbm2(across, height, 0.2, fp, 3))[..., None]
        if s["cupboard"]:
            door = np.abs(np.modf(np.abs(across) / 0.5)[0] - 0.5) > 0.497
            albedo = p["wood"] * (1 + 0.1 * n.fbm2(across, height / 30, 0.004, fp, 3))[..., None]
            albedo = albedo * (1 - 0.6 * door * fade(0.01, fp))[..., None]
        skirt = height < s["skirting"]
        albedo = np.where(skirt[..., None], p["skirting"] * 0.95, albedo)
        line = np.abs(height - s["skirting"]) < 0.002
        albedo = albedo * (1 - 0.4 * line * fade(0.01, fp))[..., None]
        return albedo, np.where(skirt, 0.3, 0.05)


class SkinDetail:
    """Where on FIND's template the creases, nails, paler soles and redder toes are (fixed for every foot)."""

    def __init__(self, template: np.ndarray, template_normals: np.ndarray, landmarks_template: dict[str, np.ndarray]):
        self.lm = landmarks_template
        t, tip = template, landmarks_template["hallux_tip"]
        nails = []
        for y, scale in ((tip[1], 1.0), (tip[1] + 0.012, 0.55), (tip[1] + 0.022, 0.5), (tip[1] + 0.031, 0.45),
                         (tip[1] + 0.039, 0.4)):
            row = t[np.abs(t[:, 1] - y) < 0.004]
            end = row[row[:, 0].argmax()]
            top = row[(row[:, 0] > end[0] - 0.016 * scale) & (row[:, 0] < end[0] - 0.004 * scale)]
            centre = np.array([end[0] - 0.009 * scale, y, top[:, 2].max() if len(top) else end[2] + 0.006])
            nails.append((centre, np.array([0.0085, 0.0075, 0.004]) * scale))
        self.nails = nails
        self.plantar = np.clip(-template_normals[:, 2] * 1.5 - 0.2, 0, 1)
        self.toes = np.clip((template[:, 0] - landmarks_template["first_mtp"][0] - 0.01) / 0.02, 0, 1)
        self.heel = np.clip((-template[:, 0] + landmarks_template["heel"][0] + 0.045) / 0.03, 0, 1)

    def vertex_albedo(self, tone: np.ndarray, find_colours: np.ndarray, skin: float, rng: np.random.Generator) -> np.ndarray:
        rel = (find_colours / find_colours.mean(0)) ** rng.uniform(0.4, 0.9)
        albedo = tone * rel
        red = rng.uniform(0.05, 0.3) * np.maximum(self.toes, self.heel * 0.7)
        albedo = albedo * (1 + red[:, None] * np.array([0.35, -0.1, -0.1]))
        pale = (0.15 + 0.55 * skin) * self.plantar
        sole = np.array([0.55, 0.36, 0.28]) * (0.6 + 0.4 * (1 - skin))
        return albedo * (1 - pale[:, None]) + sole * pale[:, None]

    def pixel_detail(self, p: np.ndarray, noise: Noise, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """Albedo factor [n] (pores, blotches, creases) and nail weight [n] at template points ``p`` [n, 3]."""
        lm = self.lm
        pores = 0.025 * noise.n3(p, 0.0007) + 0.035 * noise.n3(p + 3.1, 0.004) + 0.05 * noise.n3(p - 1.7, 0.02)
        # creases across the toe joints: deeper when the toe is bent up
        deep = 0.15 + 0.25 * np.clip(angle_deg / 60, 0, 1)
        wobble = 0.0006 * noise.n3(p * [1, 4, 1], 0.003)
        ip = p[:, 0] - lm["hallux_ip"][0] + wobble
        on_hallux = np.exp(-((p[:, 1] - lm["hallux_tip"][1]) / 0.009) ** 4)
        lines = sum(np.exp(-((ip - o) / 0.00045) ** 2) for o in (-0.0035, -0.0015, 0.0005, 0.0022))
        forward = (p[:, :2] - lm["first_mtp"][:2]) @ (np.array([1.0, 0.35]) / np.hypot(1, 0.35)) + wobble
        base = sum(np.exp(-((forward - o) / 0.0005) ** 2) for o in (0.008, 0.011, 0.0135))
        crease = deep * (on_hallux * lines + 0.6 * base * (p[:, 2] > lm["first_mtp"][2] + 0.01))
        nail = np.zeros(len(p))
        for centre, radii in self.nails:
            d = (((p - centre) / radii) ** 2).sum(1)
            nail = np.maximum(nail, np.clip((1 - d) * 6, 0, 1))
        return (1 + pores) * (1 - np.clip(crease, 0, 0.6)), nail
