"""One evaluation photo from a seed: scene -> NumPy rasterizer + analytic floor and wall -> shading with
shadow maps -> depth of field -> lens distortion -> phone pipeline -> JPEG, with the true landmarks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse as sp
from foot import LANDMARKS, FindModel
from scipy.ndimage import gaussian_filter, map_coordinates

from .look import Noise, SkinDetail, Surfaces, srgb_to_linear
from .phone import develop
from .raster import PinholeCamera, rasterize, vertex_normals
from .scene import SKIN_LINEAR, STREAM, Light, Setup, sample

SHADOW_MAP = 768
SKIN_WRAP = np.array([0.55, 0.28, 0.2])
"""Light wraps past the terminator further in red than in blue: skin scatters red light under the surface."""
PENUMBRA_M = 0.1
"""Typical occluder-to-receiver distance that turns a light's angular size into a penumbra width."""
POLISH = srgb_to_linear([[0.7, 0.05, 0.1], [0.85, 0.45, 0.55], [0.25, 0.05, 0.1], [0.9, 0.3, 0.2]])


@dataclass
class Photo:
    jpeg: bytes
    truth: dict
    foot_mask: np.ndarray  # bool [h, w]: pixels of the measured foot


@dataclass
class _Mesh:
    verts: np.ndarray
    faces: np.ndarray
    albedo: np.ndarray
    coords: np.ndarray  # where the fine detail is looked up: template (skin) or world (cloth) metres
    ao: np.ndarray
    material: np.ndarray  # per vertex: 0 measured foot, 1 other skin, 2 cloth


class EvalRenderer:
    """Holds FIND and what is fixed by its template; ``photo(seed)`` makes one photo."""

    def __init__(self, model: FindModel | None = None):
        self.model = model or FindModel()
        m = self.model
        self.template = np.asarray(m.subdivide @ m.template, float)
        self.faces = m.faces.astype(np.int64)
        landmarks_template = {k: m.template[idx].mean(0) for k, idx in m.landmark_vertices.items()}
        self.skin = SkinDetail(self.template, vertex_normals(self.template, self.faces), landmarks_template)
        n = len(self.template)
        e = np.concatenate([self.faces[:, [0, 1]], self.faces[:, [1, 2]], self.faces[:, [2, 0]]])
        adj = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        adj = ((adj + adj.T) > 0).astype(float)
        self.neighbour_mean = sp.diags(1 / np.asarray(adj.sum(1)).ravel()) @ adj

    def photo(self, seed: int, long_side: int = 1024, supersample: float = 1.25) -> Photo:
        s = sample(self.model, seed, long_side)
        rng = np.random.default_rng([seed, STREAM, 1])
        noise = Noise(rng)
        meshes, extras = self._meshes(s, rng)
        mesh = _concat(meshes)
        w, h = s.size
        focal = s.focal_eq_mm / 43.27 * np.hypot(w, h)
        camera = PinholeCamera.looking_at(s.eye, s.target, s.roll_deg, focal, s.size)
        r_corner = np.hypot(w, h) / 2 / focal
        margin = 1 + max(0.0, s.distortion_k1) * r_corner ** 2 + 0.01
        canvas = camera.scaled(supersample, (int(np.ceil(w * margin * supersample)), int(np.ceil(h * margin * supersample))))
        xy, depth = canvas.project(mesh.verts)
        face, bary, zbuf = rasterize(xy, depth, mesh.faces, canvas.size, near=0.01)
        surfaces = Surfaces(np.random.default_rng([seed, STREAM, 2]), s.surface, (s.landmarks["heel"] + s.landmarks["hallux_tip"]) / 2)
        radiance, z, measured = self._shade(s, canvas, mesh, face, bary, zbuf, surfaces, noise, rng,
                                            extras["polish_colour"])
        radiance = _depth_of_field(radiance, z, float(canvas.to_camera(s.target[None])[0, 2]),
                                   s.aperture_mm / 1000 * canvas.focal_px)
        if rng.random() < 0.08:  # a shaky hand
            radiance = _motion_blur(radiance, rng, supersample)
        # lens distortion (division model: undistorted = distorted * (1 + k1 r^2)), then down to the photo's size
        big = (int(round(w * supersample)), int(round(h * supersample)))
        out_cam = camera.scaled(supersample, big)
        gx, gy = np.meshgrid((np.arange(big[0]) - out_cam.centre[0]) / out_cam.focal_px,
                             (np.arange(big[1]) - out_cam.centre[1]) / out_cam.focal_px)
        grow = 1 + s.distortion_k1 * (gx ** 2 + gy ** 2)
        map_x = (gx * grow * canvas.focal_px + canvas.centre[0]).astype(np.float32)
        map_y = (gy * grow * canvas.focal_px + canvas.centre[1]).astype(np.float32)
        radiance = cv2.remap(radiance.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.remap(measured.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
        radiance = cv2.resize(radiance, s.size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, s.size, interpolation=cv2.INTER_AREA) > 0.5
        centre = radiance[h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean(2)
        jpeg, phone = develop(radiance, rng, float(np.percentile(centre, 55)), s.lens)
        truth = self._truth(s, camera, canvas, zbuf, extras, phone)
        return Photo(jpeg=jpeg, truth=truth, foot_mask=mask)

    # --- geometry -------------------------------------------------------------------------------
    def _meshes(self, s: Setup, rng) -> tuple[list[_Mesh], dict]:
        tone = np.interp(s.skin * (len(SKIN_LINEAR) - 1), np.arange(len(SKIN_LINEAR)), np.arange(len(SKIN_LINEAR)))
        i = min(int(tone), len(SKIN_LINEAR) - 2)
        tone = (SKIN_LINEAR[i] * (1 - (tone - i)) + SKIN_LINEAR[i + 1] * (tone - i)) * rng.uniform(0.9, 1.1, 3)
        albedo = self.skin.vertex_albedo(tone, s.find_colours, s.skin, rng)
        faces = self.faces if s.side == "right" else self.faces[:, ::-1].copy()
        foot = _Mesh(s.foot_verts, faces, albedo, self.template, self._ao(s.foot_verts, faces, s.floor_z),
                     np.zeros(len(s.foot_verts), int))
        meshes = [foot]
        if s.other_foot is not None:
            other_faces = self.faces[:, ::-1].copy() if s.side == "right" else self.faces
            meshes.append(_Mesh(s.other_foot, other_faces, albedo, self.template,
                                self._ao(s.other_foot, other_faces, s.floor_z), np.ones(len(albedo), int)))
        trousers = rng.random() < (0.45 if s.setting != "couch" else 0.6) and s.view != "top_down"
        leg_tone = np.median(albedo[self.skin.plantar < 0.1], 0)
        ankle, up = s.leg_axis
        length = _clear_of_camera(ankle, up, rng.uniform(0.3, 0.45), s.eye)
        meshes.append(_tube(ankle - 0.02 * up, up, s.ankle_radii, length, lambda t: 0.88 + 0.55 * np.sin(np.clip(t * 2.2, 0, np.pi / 2)),
                            leg_tone, 1, rng))
        if trousers:
            hem = rng.uniform(0.01, 0.15)
            cloth = srgb_to_linear([[0.08, 0.1, 0.18], [0.2, 0.2, 0.22], [0.45, 0.4, 0.33], [0.5, 0.1, 0.1], [0.15, 0.28, 0.45],
                                    [0.8, 0.8, 0.78], [0.03, 0.03, 0.03]][rng.integers(7)]) * rng.uniform(0.8, 1.2)
            r = max(s.ankle_radii) * rng.uniform(1.5, 2.0)
            cloth_length = _clear_of_camera(ankle + hem * up, up, length - hem, s.eye, gap=0.3)
            trousers = cloth_length > 0.05
            if trousers:
                meshes.append(_tube(ankle + hem * up, up, (r, r), cloth_length, lambda t: 1 + 0.25 * t, cloth, 2, rng,
                                    folds=True))
        polish = POLISH[rng.integers(len(POLISH))] if rng.random() < 0.12 else None
        return meshes, {"trousers": bool(trousers), "other_foot": s.other_foot is not None, "polish": polish is not None,
                        "polish_colour": polish}

    def _ao(self, verts, faces, floor_z) -> np.ndarray:
        """Occlusion per vertex: creases between the toes (concave spots) and the sole near the floor."""
        normals = vertex_normals(verts, faces)
        cavity = np.clip(((self.neighbour_mean @ verts - verts) * normals).sum(1) / 0.0006, 0, 1)
        near_floor = np.exp(-(verts[:, 2] - floor_z) / 0.008) * np.clip(0.3 - normals[:, 2], 0, 1)
        return np.clip(1 - 0.45 * cavity - 0.6 * near_floor, 0.2, 1)

    # --- light ----------------------------------------------------------------------------------
    def _shade(self, s: Setup, cam: PinholeCamera, mesh: _Mesh, face, bary, zbuf, surfaces: Surfaces, noise, rng,
               polish: np.ndarray | None):
        h, w = face.shape
        rays = cam.rays().reshape(-1, 3).astype(np.float32)
        eye = s.eye.astype(np.float32)
        n_pix = h * w
        # analytic floor (or couch) and wall behind the foot
        t_floor = np.where(rays[:, 2] < -1e-6, (s.floor_z - s.eye[2]) / np.minimum(rays[:, 2], -1e-6), np.inf)
        back = s.eye - (s.landmarks["heel"] + s.landmarks["hallux_tip"]) / 2
        back[2] = 0
        wall_n = back / np.linalg.norm(back) if np.linalg.norm(back) > 1e-3 else np.array([1.0, 0, 0])
        wall_p = (s.landmarks["heel"] + s.landmarks["hallux_tip"]) / 2 - wall_n * (s.wall_distance + 0.5 * (s.setting == "couch"))
        facing = rays @ wall_n
        t_wall = np.where(facing < -1e-6, ((wall_p - s.eye) @ wall_n) / np.minimum(facing, -1e-6), np.inf)
        t_wall = np.where(s.eye[2] + t_wall * rays[:, 2] >= s.floor_z, t_wall, np.inf)
        t_bg = np.minimum(t_floor, t_wall)
        zf = zbuf.ravel()
        on_mesh = (face.ravel() >= 0) & (zf < t_bg)
        z = np.where(on_mesh, zf, t_bg)
        hit = np.isfinite(z)
        P = eye + rays * np.where(hit, z, 0).astype(np.float32)[:, None]
        N = np.zeros((n_pix, 3), np.float32)
        albedo = np.zeros((n_pix, 3), np.float32)
        gloss = np.zeros(n_pix, np.float32)
        ao = np.ones(n_pix, np.float32)
        wrap = np.zeros((n_pix, 3), np.float32)
        measured = np.zeros(n_pix, bool)

        # meshes: interpolate everything with the barycentrics
        idx = np.flatnonzero(on_mesh)
        tri = mesh.faces[face.ravel()[idx]]
        b = bary.reshape(-1, 3)[idx]
        lerp = lambda a: np.einsum("nk,nkc->nc", b, a[tri])  # noqa: E731
        normals = vertex_normals(mesh.verts, mesh.faces)
        Nm = lerp(normals)
        Nm /= np.linalg.norm(Nm, axis=1, keepdims=True) + 1e-12
        Nm = np.where(((Nm * rays[idx]).sum(1) > 0)[:, None], -Nm, Nm)  # two-sided (the open leg tube)
        mat = mesh.material[tri[:, 0]]
        coords = lerp(mesh.coords)
        alb = lerp(mesh.albedo)
        skin = mat < 2
        detail, nail = self.skin.pixel_detail(coords[skin], noise, s.angle_deg)
        alb_skin = alb[skin] * detail[:, None]
        nail_colour = alb_skin * 0.5 + np.array([0.5, 0.38, 0.34]) if polish is None else polish
        alb[skin] = alb_skin * (1 - nail[:, None]) + nail_colour * nail[:, None]
        cloth = ~skin
        alb[cloth] *= (1 + 0.12 * noise.n3(coords[cloth], 0.0015))[:, None]
        g = np.where(skin, 0.3, 0.0)
        g[skin] += 0.5 * nail
        N[idx], albedo[idx], gloss[idx], ao[idx] = Nm, alb, g, lerp(mesh.ao[:, None])[:, 0]
        wrap[idx] = np.where(skin[:, None], SKIN_WRAP * rng.uniform(0.7, 1.2), 0.05)
        measured[idx] = mat == 0

        # background: floor and wall, with the floor darkened where the feet touch it
        footprint = np.where(hit, z, 1.0) / cam.focal_px
        floor = hit & ~on_mesh & (t_floor <= t_wall)
        wall = hit & ~on_mesh & (t_wall < t_floor)
        for sel, normal in ((floor, np.array([0, 0, 1.0])), (wall, wall_n)):
            if not sel.any():
                continue
            p = P[sel]
            slant = np.maximum(np.abs(rays[sel] @ normal) / np.linalg.norm(rays[sel], axis=1), 0.05)
            fp = footprint[sel] * np.linalg.norm(rays[sel], axis=1) / slant
            if normal[2] == 1.0:
                a, gl = surfaces.floor(p[:, 0], p[:, 1], fp)
                ao[sel] = 1 - 0.8 * _contact_occlusion(mesh.verts, s.floor_z, p)
            else:
                across = p[:, :2] @ np.array([-normal[1], normal[0]])
                a, gl = surfaces.wall(across, p[:, 2] - s.floor_z, fp)
            N[sel], albedo[sel], gloss[sel] = normal, a, gl
        V = -rays / np.linalg.norm(rays, axis=1, keepdims=True)
        sky, ground = s.ambient_sky.astype(np.float32), s.ambient_ground.astype(np.float32)
        ambient = ground + (sky - ground) * (0.5 + 0.5 * N[:, 2:3])
        out = albedo * ambient * ao[:, None]
        for light in s.lights:
            L, E = _toward(light, P)
            vis = _shadow(light, mesh, P + N * 0.003, s)
            ndl = (N * L).sum(1, keepdims=True)
            diffuse = np.clip((ndl + wrap) / (1 + wrap), 0, 1)
            H = V + L
            H /= np.linalg.norm(H, axis=1, keepdims=True) + 1e-12
            shininess = 12 + 250 * gloss
            fresnel = 0.04 + 0.96 * (1 - np.clip((V * H).sum(1), 0, 1)) ** 5
            spec = fresnel * (shininess + 8) / (8 * np.pi) * np.clip((N * H).sum(1), 0, 1) ** shininess
            spec = spec * np.clip(ndl[:, 0], 0, 1) * (0.3 + gloss)
            out += E.astype(np.float32) * vis[:, None].astype(np.float32) * (albedo * diffuse * (0.6 + 0.4 * ao[:, None]) + spec[:, None])
        out[~hit] = s.ambient_sky * 0.6
        return out.reshape(h, w, 3), np.where(hit, z, 50.0).reshape(h, w), measured.reshape(h, w)

    # --- truth ----------------------------------------------------------------------------------
    def _truth(self, s: Setup, camera: PinholeCamera, canvas: PinholeCamera, zbuf, extras, phone) -> dict:
        w, h = s.size
        pts3 = np.stack([s.landmarks[k] for k in LANDMARKS])
        und, depth = camera.project(pts3)
        norm = (und - camera.centre) / camera.focal_px
        dist = norm.copy()
        for _ in range(30):  # invert the division model for these few points
            dist = norm / (1 + s.distortion_k1 * (dist ** 2).sum(1, keepdims=True))
        px = dist * camera.focal_px + camera.centre
        cxy, cdepth = canvas.project(pts3)
        cx = np.clip(np.round(cxy).astype(int), 0, [canvas.size[0] - 1, canvas.size[1] - 1])
        # in sight: no surface more than 2.5 cm nearer all around it. Joint landmarks (first_mtp) lie
        # inside the toe, about 1.5 cm under the skin; a point on the silhouette (the heel) sees past
        # the surface that grazes it; the far side of the foot is 5-10 cm nearer than the inner side.
        farthest = cv2.dilate(np.where(np.isfinite(zbuf), zbuf, 1e3).astype(np.float32), np.ones((5, 5), np.uint8))
        visible = cdepth <= farthest[cx[:, 1], cx[:, 0]] + 0.025
        inside = (px[:, 0] >= 0) & (px[:, 0] <= w - 1) & (px[:, 1] >= 0) & (px[:, 1] <= h - 1)
        inner = s.view in ("medial", "oblique") and s.off_axis_deg < 45 and s.elevation_deg < 55
        return {
            "seed": s.seed, "width": w, "height": h,
            "landmarks": {k: [round(float(v), 2) for v in p] for k, p in zip(LANDMARKS, px)},
            "in_frame": {k: bool(v) for k, v in zip(LANDMARKS, inside)},
            "visible": {k: bool(v) for k, v in zip(LANDMARKS, visible & inside)},
            "angle_deg": round(s.angle_deg, 2), "side": s.side, "view": s.view, "inner_side": inner,
            "off_axis_deg": round(s.off_axis_deg, 1), "elevation_deg": round(s.elevation_deg, 1),
            "roll_deg": round(s.roll_deg, 1), "setting": s.setting, "lens": s.lens, "focal_eq_mm": round(s.focal_eq_mm, 1),
            "distortion_k1": round(s.distortion_k1, 3), "light": s.light_kind, "surface": s.surface,
            "skin": round(s.skin, 2), "foot_px": round(float(np.hypot(*(px[-1] - px[0]))), 1),
            "trousers": extras["trousers"], "other_foot": extras["other_foot"], "polish": extras["polish"], **phone,
        }


def _concat(meshes: list[_Mesh]) -> _Mesh:
    offsets = np.cumsum([0] + [len(m.verts) for m in meshes[:-1]])
    joined = {f: np.concatenate([getattr(m, f) for m in meshes]) for f in ("verts", "albedo", "coords", "ao", "material")}
    return _Mesh(faces=np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]), **joined)


def _tube(bottom, up, radii, length, profile, colour, material, rng, folds=False) -> _Mesh:
    """A tapered elliptical tube up the shin: the lower leg (skin) or a trouser leg (cloth)."""
    rings, segs = 18, 40
    side = np.cross(up, [0, 1.0, 0])
    side /= np.linalg.norm(side)
    other = np.cross(up, side)
    t = np.linspace(0, 1, rings)
    ang = np.linspace(0, 2 * np.pi, segs, endpoint=False)
    r = profile(t)[:, None] * (1 + (0.04 * np.sin(ang[None] * rng.integers(3, 7) + rng.uniform(0, 6) + t[:, None] * 9)
                                    if folds else 0))
    ring = np.cos(ang)[None, :, None] * radii[0] * side + np.sin(ang)[None, :, None] * radii[1] * other
    verts = (bottom + (t * length)[:, None, None] * up + r[..., None] * ring).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(rings - 1), np.arange(segs), indexing="ij")
    a, b_, c, d = i * segs + j, i * segs + (j + 1) % segs, (i + 1) * segs + j, (i + 1) * segs + (j + 1) % segs
    faces = np.concatenate([np.stack([a, c, b_], -1).reshape(-1, 3), np.stack([b_, c, d], -1).reshape(-1, 3)])
    n = len(verts)
    return _Mesh(verts, faces.astype(np.int64), np.tile(colour, (n, 1)), verts.copy(), np.ones(n),
                 np.full(n, material))


def _clear_of_camera(bottom, up, length, eye, gap=0.2) -> float:
    """Shorten the shin so the camera (looking down at the foot) is never inside it."""
    t = np.linspace(0, length, 50)
    near = np.linalg.norm(bottom + t[:, None] * up - eye, axis=1) < gap
    return float(t[np.argmax(near)] if near.any() else length)


def _toward(light: Light, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if light.kind == "sun":
        return np.broadcast_to(light.vector / np.linalg.norm(light.vector), P.shape), light.colour
    d = light.vector - P
    r2 = np.maximum((d * d).sum(1, keepdims=True), 1e-4)
    return d / np.sqrt(r2), light.colour / r2


def _shadow(light: Light, mesh: _Mesh, P: np.ndarray, s: Setup) -> np.ndarray:
    """Share of the light each point sees: a shadow map of the feet and legs, filtered over the light's size."""
    centre = mesh.verts.mean(0)
    radius = float(np.linalg.norm(mesh.verts - centre, axis=1).max())
    if light.kind == "sun":
        eye = centre + light.vector / np.linalg.norm(light.vector) * 20
        focal = SHADOW_MAP / 2 * 20 / radius
    else:
        eye = light.vector
        dist = np.linalg.norm(eye - centre)
        focal = SHADOW_MAP / 2 / np.tan(np.arcsin(min(radius / max(dist, 1e-3), 0.95)))
    cam = PinholeCamera.looking_at(eye, centre, 0.0, focal, (SHADOW_MAP, SHADOW_MAP))
    xy, depth = cam.project(mesh.verts)
    _, _, sm = rasterize(xy, depth, mesh.faces, cam.size, near=0.005)
    uv, d = cam.project(P)
    vis = np.ones(len(P))
    inside = (d > 0) & (uv[:, 0] >= 0) & (uv[:, 1] >= 0) & (uv[:, 0] < SHADOW_MAP - 1) & (uv[:, 1] < SHADOW_MAP - 1)
    if not inside.any():
        return vis
    uv, d = uv[inside], d[inside]
    r_px = light.softness * PENUMBRA_M * focal / d + 0.7
    golden = np.pi * (3 - np.sqrt(5))
    k = np.arange(12)
    offsets = np.stack([np.cos(k * golden), np.sin(k * golden)], 1) * np.sqrt((k + 0.5) / 12)[:, None]
    lit = np.zeros(len(d))
    for o in offsets:
        q = np.clip(np.round(uv + o * r_px[:, None]).astype(int), 0, SHADOW_MAP - 1)
        lit += d - 0.004 <= sm[q[:, 1], q[:, 0]]
    vis[inside] = lit / len(offsets)
    return vis


def _contact_occlusion(verts: np.ndarray, floor_z: float, points: np.ndarray, cell: float = 0.004) -> np.ndarray:
    """How much the feet and legs above a floor point hide the room from it (soft contact shadows)."""
    low = verts[verts[:, 2] < floor_z + 0.12]
    occ = np.zeros(len(points))
    if not len(low):
        return occ
    lo = low[:, :2].min(0) - 0.08
    shape = np.ceil((low[:, :2].max(0) + 0.08 - lo) / cell).astype(int) + 1
    grid = np.zeros(shape[::-1])
    ij = ((low[:, :2] - lo) / cell).astype(int)
    np.maximum.at(grid, (ij[:, 1], ij[:, 0]), np.exp(-(low[:, 2] - floor_z) / 0.02))
    grid = np.clip(gaussian_filter(grid, 0.012 / cell) * 2.5, 0, 1)
    rel = (points[:, :2] - lo) / cell
    return map_coordinates(grid, [rel[:, 1], rel[:, 0]], order=1, mode="constant", cval=0.0)


def _depth_of_field(img: np.ndarray, depth: np.ndarray, focus: float, aperture_px: float) -> np.ndarray:
    """A thin lens: blur grows with |1/depth - 1/focus|; a small stack of Gaussian blurs, blended."""
    coc = aperture_px * np.abs(1 / np.maximum(depth, 1e-3) - 1 / focus) / 2
    levels = [0.0, 1.0, 2.0, 4.0, 8.0]
    stack = [img] + [cv2.GaussianBlur(img.astype(np.float32), (0, 0), s) for s in levels[1:]]
    pos = np.interp(np.clip(coc, 0, levels[-1]), levels, np.arange(len(levels)))
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(levels) - 1)
    frac = (pos - lo)[..., None]
    out = np.zeros_like(img)
    for k, layer in enumerate(stack):
        out += layer * ((lo == k)[..., None] * (1 - frac) + (hi == k)[..., None] * frac)
    return out


def _motion_blur(img: np.ndarray, rng, supersample: float) -> np.ndarray:
    k = int(rng.integers(3, 9) * supersample) | 1
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1 / k
    rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(0, 180)), 1)
    return cv2.filter2D(img.astype(np.float32), -1, cv2.warpAffine(kernel, rot, (k, k)))
