"""A pinhole camera and a NumPy z-buffer rasterizer (no OpenGL): triangle ids and barycentrics per pixel.

The training engine draws with OpenGL; this one scan-converts in NumPy, so the two share no
rasterization, interpolation or anti-aliasing code. Pixel centres are at integer coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_CANDIDATES = 3_000_000
"""Pixel candidates tested per batch (memory bound of one rasterization step)."""


@dataclass
class PinholeCamera:
    """World (metres, +z up) -> pixels: rows of ``rotation`` are the camera's right, down and forward axes."""

    eye: np.ndarray
    rotation: np.ndarray
    focal_px: float
    centre: np.ndarray  # principal point (x, y) in pixels
    size: tuple[int, int]  # (width, height)

    @classmethod
    def looking_at(cls, eye, target, roll_deg: float, focal_px: float, size: tuple[int, int]) -> PinholeCamera:
        forward = np.asarray(target, float) - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        if np.linalg.norm(right) < 1e-6:  # straight down: any heading
            right = np.cross(forward, [1.0, 0.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        t = np.radians(roll_deg)
        right, down = np.cos(t) * right + np.sin(t) * down, -np.sin(t) * right + np.cos(t) * down
        centre = np.array([(size[0] - 1) / 2, (size[1] - 1) / 2])
        return cls(np.asarray(eye, float), np.stack([right, down, forward]), focal_px, centre, size)

    def scaled(self, factor: float, size: tuple[int, int]) -> PinholeCamera:
        """The same view on a canvas ``factor`` times finer and of ``size`` (centred)."""
        centre = np.array([(size[0] - 1) / 2, (size[1] - 1) / 2])
        return PinholeCamera(self.eye, self.rotation, self.focal_px * factor, centre, size)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points)
        return (p - self.eye.astype(p.dtype)) @ self.rotation.T.astype(p.dtype)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (x, y) and depth along the optical axis."""
        c = self.to_camera(points)
        z = c[:, 2]
        safe = np.where(z > 1e-6, z, 1e-6)
        return c[:, :2] * self.focal_px / safe[:, None] + self.centre, z

    def rays(self) -> np.ndarray:
        """World direction of every pixel's ray [h, w, 3], scaled so its forward component is 1."""
        w, h = self.size
        x, y = np.meshgrid((np.arange(w) - self.centre[0]) / self.focal_px, (np.arange(h) - self.centre[1]) / self.focal_px)
        cam = np.stack([x, y, np.ones_like(x)], -1)
        return cam @ self.rotation


def rasterize(xy: np.ndarray, depth: np.ndarray, faces: np.ndarray, size: tuple[int, int], near: float = 1e-3
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffered scan conversion of projected triangles.

    ``xy`` [N, 2] pixel positions and ``depth`` [N] of the vertices. Returns the nearest face per
    pixel ([h, w], -1 where empty), its perspective-correct barycentrics [h, w, 3] and depth [h, w].
    """
    w, h = size
    tri = xy[faces]  # [F, 3, 2]
    z = depth[faces]
    keep = (z > near).all(1)
    lo, hi = np.ceil(tri.min(1)), np.floor(tri.max(1))
    keep &= (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] <= w - 1) & (lo[:, 1] <= h - 1) & (hi >= lo).all(1)
    area = ((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
            - (tri[:, 2, 0] - tri[:, 0, 0]) * (tri[:, 1, 1] - tri[:, 0, 1]))
    keep &= np.abs(area) > 1e-9
    ids = np.flatnonzero(keep)
    lo = np.clip(lo[ids], 0, [w - 1, h - 1]).astype(np.int64)
    hi = np.clip(hi[ids], 0, [w - 1, h - 1]).astype(np.int64)
    spans = 2 ** np.ceil(np.log2(hi - lo + 1)).astype(np.int64)  # per axis, so thin triangles stay cheap
    key = spans[:, 0] * 65536 + spans[:, 1]
    zbuf = np.full(h * w, np.inf)
    hits_p, hits_f, hits_b, hits_z = [], [], [], []
    for k in np.unique(key):
        group = np.flatnonzero(key == k)
        sx, sy = int(k // 65536), int(k % 65536)
        oy, ox = np.divmod(np.arange(sx * sy), sx)
        step = max(1, MAX_CANDIDATES // (sx * sy))
        for start in range(0, len(group), step):
            g = group[start:start + step]
            f = ids[g]
            px = lo[g, 0:1] + ox[None]
            py = lo[g, 1:2] + oy[None]
            inside_box = (px <= hi[g, 0:1]) & (py <= hi[g, 1:2])
            t = tri[f]
            a = area[f][:, None]
            b0 = ((t[:, 1:2, 0] - px) * (t[:, 2:3, 1] - py) - (t[:, 2:3, 0] - px) * (t[:, 1:2, 1] - py)) / a
            b1 = ((t[:, 2:3, 0] - px) * (t[:, 0:1, 1] - py) - (t[:, 0:1, 0] - px) * (t[:, 2:3, 1] - py)) / a
            b2 = 1 - b0 - b1
            inside = inside_box & (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
            r, c = np.nonzero(inside)
            if not len(r):
                continue
            bary = np.stack([b0[r, c], b1[r, c], b2[r, c]], 1) / z[f[r]]
            inv = bary.sum(1)
            hits_p.append(py[r, c] * w + px[r, c])
            hits_f.append(f[r])
            hits_b.append(bary / inv[:, None])
            hits_z.append(1 / inv)
    face = np.full(h * w, -1, np.int64)
    bary_out = np.zeros((h * w, 3))
    if hits_p:
        p, f, b, d = (np.concatenate(a) for a in (hits_p, hits_f, hits_b, hits_z))
        np.minimum.at(zbuf, p, d)
        won = d <= zbuf[p]
        face[p[won]], bary_out[p[won]] = f[won], b[won]
    return face.reshape(h, w), bary_out.reshape(h, w, 3), zbuf.reshape(h, w)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    n = np.zeros_like(verts, dtype=float)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-12)
