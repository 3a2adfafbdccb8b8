"""Headless OpenGL (moderngl + EGL) renderer for photo-like foot images with exact landmarks.

A scene is a posed foot, an optional lower leg, optional hand/occluders, a wall and a floor
with procedural textures, and lights. It is rendered through any 2D similarity of the
camera's image plane, so the second-stage forefoot crop is rendered sharp at its own
resolution instead of being resampled from the full view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import moderngl
import numpy as np

VERTEX_SHADER = """
#version 330
uniform mat4 mvp;
uniform mat3 image_similarity;  // applied to NDC x,y (homogeneous, so on clip coordinates)
in vec3 in_pos; in vec3 in_normal; in vec3 in_color;
out vec3 v_normal; out vec3 v_color; out vec3 v_pos;
void main() {
    vec4 clip = mvp * vec4(in_pos, 1.0);
    vec3 xyw = image_similarity * vec3(clip.x, clip.y, clip.w);
    gl_Position = vec4(xyw.x, xyw.y, clip.z, clip.w);
    v_normal = in_normal; v_color = in_color; v_pos = in_pos;
}
"""

FRAGMENT_SHADER = """
#version 330
uniform vec3 key_dir; uniform vec3 key_col; uniform vec3 fill_dir; uniform vec3 fill_col;
uniform vec3 ambient; uniform vec3 eye; uniform float shininess; uniform float spec_strength;
uniform float falloff; uniform float falloff_d0;
in vec3 v_normal; in vec3 v_color; in vec3 v_pos;
out vec4 f_color;
void main() {
    vec3 n = normalize(v_normal);
    vec3 view = normalize(eye - v_pos);
    if (dot(n, view) < 0.0) n = -n;
    // Wrapped diffuse: skin scatters light past the terminator.
    float kd = clamp((dot(n, key_dir) + 0.25) / 1.25, 0.0, 1.0);
    float fd = clamp((dot(n, fill_dir) + 0.25) / 1.25, 0.0, 1.0);
    vec3 h = normalize(key_dir + view);
    float spec = pow(max(dot(n, h), 0.0), shininess) * spec_strength;
    vec3 c = v_color * (ambient + key_col * kd + fill_col * fd) + key_col * spec;
    // A flash lights near things more: inverse square from the camera (falloff 0: off).
    c *= mix(1.0, clamp(pow(falloff_d0 / max(distance(v_pos, eye), 1e-4), 2.0), 0.0, 3.0), falloff);
    f_color = vec4(c, 1.0);
}
"""

TEX_VERTEX_SHADER = """
#version 330
uniform mat4 mvp; uniform mat3 image_similarity;
in vec3 in_pos; in vec2 in_uv;
out vec2 v_uv; out vec3 v_pos;
void main() {
    vec4 clip = mvp * vec4(in_pos, 1.0);
    vec3 xyw = image_similarity * vec3(clip.x, clip.y, clip.w);
    gl_Position = vec4(xyw.x, xyw.y, clip.z, clip.w);
    v_uv = in_uv; v_pos = in_pos;
}
"""

TEX_FRAGMENT_SHADER = """
#version 330
uniform sampler2D tex; uniform float brightness; uniform vec3 eye; uniform float falloff; uniform float falloff_d0;
in vec2 v_uv; in vec3 v_pos; out vec4 f_color;
void main() {
    float flash = mix(1.0, clamp(pow(falloff_d0 / max(distance(v_pos, eye), 1e-4), 2.0), 0.0, 3.0), falloff);
    f_color = vec4(texture(tex, v_uv).rgb * brightness * flash, 1.0);
}
"""


@dataclass
class Mesh:
    verts: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    normals: np.ndarray | None = None

    def with_normals(self) -> Mesh:
        if self.normals is not None:
            return self
        v, f = self.verts, self.faces
        fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        n = np.zeros_like(v)
        for k in range(3):
            np.add.at(n, f[:, k], fn)
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        return Mesh(v, f, self.colors, n.astype(np.float32))


@dataclass
class TexturedQuad:
    corners: np.ndarray  # [4, 3] in order (0,0), (1,0), (1,1), (0,1) of uv
    texture: np.ndarray  # [H, W, 3] uint8
    uv_scale: float = 1.0
    brightness: float = 1.0
    multiply: bool = False  # darkens what is drawn before it (a shadow) instead of covering it


@dataclass
class Lights:
    key_dir: np.ndarray
    key_col: np.ndarray
    fill_dir: np.ndarray
    fill_col: np.ndarray
    ambient: np.ndarray
    shininess: float = 20.0
    spec_strength: float = 0.08
    falloff: float = 0.0  # 1: lit by a flash at the camera, brightness falling with distance squared
    falloff_d0: float = 1.0  # distance (m) at which the flash's light is as bright as the key light says


@dataclass
class Camera:
    eye: np.ndarray
    target: np.ndarray
    up: np.ndarray
    fov_y_deg: float
    near: float = 0.02
    far: float = 10.0
    distortion: tuple[float, float] = (0.0, 0.0)
    """Radial lens distortion (k1, k2), k1 > 0 barrel: a point of the photo at radius r (1 at the corners) shows
    the pinhole image at r (1 + k1 r^2 + k2 r^4) / (1 + k1 + k2), so the corners stay where they were."""

    def view(self) -> np.ndarray:
        f = self.target - self.eye
        f = f / np.linalg.norm(f)
        s = np.cross(f, self.up)
        s /= np.linalg.norm(s)
        u = np.cross(s, f)
        m = np.eye(4)
        m[0, :3], m[1, :3], m[2, :3] = s, u, -f
        m[:3, 3] = -m[:3, :3] @ self.eye
        return m

    def projection(self, aspect: float = 1.0) -> np.ndarray:
        t = 1.0 / np.tan(np.radians(self.fov_y_deg) / 2)
        n, f = self.near, self.far
        return np.array([[t / aspect, 0, 0, 0], [0, t, 0, 0],
                         [0, 0, (f + n) / (n - f), 2 * f * n / (n - f)], [0, 0, -1, 0]])

    def mvp(self, aspect: float = 1.0) -> np.ndarray:
        return self.projection(aspect) @ self.view()

    def project_ndc(self, points: np.ndarray, aspect: float = 1.0) -> np.ndarray:
        p = np.c_[points, np.ones(len(points))] @ self.mvp(aspect).T
        ndc = p[:, :2] / p[:, 3:4]
        return self.distort_ndc(ndc, aspect) if any(self.distortion) else ndc

    def _lens(self, ndc: np.ndarray, aspect: float) -> tuple[np.ndarray, float, float, float]:
        """Radius of NDC points in the lens's terms (1 at the image corners), k1, k2 and the corner norm."""
        k1, k2 = self.distortion
        radius = np.linalg.norm(ndc * [aspect, 1.0], axis=1) / np.hypot(aspect, 1.0)
        return radius, k1, k2, 1 + k1 + k2

    def undistort_ndc(self, ndc: np.ndarray, aspect: float = 1.0) -> np.ndarray:
        """Where a point of the distorted photo lies in the pinhole image."""
        r, k1, k2, norm = self._lens(ndc, aspect)
        return ndc * ((1 + k1 * r ** 2 + k2 * r ** 4) / norm)[:, None]

    def distort_ndc(self, ndc: np.ndarray, aspect: float = 1.0) -> np.ndarray:
        """Where a point of the pinhole image lies in the distorted photo (undistort_ndc inverted by Newton's method)."""
        target, k1, k2, norm = self._lens(ndc, aspect)
        r = target.copy()
        for _ in range(8):
            f = r * (1 + k1 * r ** 2 + k2 * r ** 4) / norm - target
            r = r - f / ((1 + 3 * k1 * r ** 2 + 5 * k2 * r ** 4) / norm)
        scale = np.divide(r, target, out=np.ones_like(r), where=target > 1e-12)
        return ndc * scale[:, None]


@dataclass
class Scene:
    meshes: list[Mesh]
    quads: list[TexturedQuad]
    lights: Lights
    camera: Camera
    background: tuple[float, float, float] = (0.5, 0.5, 0.5)
    extra: dict = field(default_factory=dict)
    develop: Callable[[np.ndarray], np.ndarray] | None = None
    """What the phone does to every image it takes of this scene (tone, sharpening, noise), if anything."""


def _px_from_ndc(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.array([[w / 2, 0, w / 2 - 0.5], [0, -h / 2, h / 2 - 0.5], [0, 0, 1]])


def ndc_to_pixels(ndc: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """NDC -> image pixels (x right, y down, pixel centres at integers)."""
    return (np.c_[ndc, np.ones(len(ndc))] @ _px_from_ndc(size).T)[:, :2]


def pixels_to_ndc(px: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return (np.c_[px, np.ones(len(px))] @ np.linalg.inv(_px_from_ndc(size)).T)[:, :2]


def pixel_similarity_to_ndc(matrix_px: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]
                            ) -> np.ndarray:
    """A 2x3 similarity from src-image pixels to dst-image pixels, as a 3x3 on NDC (x, y, w)."""
    m = np.vstack([matrix_px, [0, 0, 1]])
    return np.linalg.inv(_px_from_ndc(dst_size)) @ m @ _px_from_ndc(src_size)


def _fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 affine map taking src points to dst points (crops may be mirrored)."""
    solution, *_ = np.linalg.lstsq(np.c_[src, np.ones(len(src))], dst, rcond=None)
    return solution.T


class Renderer:
    """One EGL context with multisampled framebuffers per output size."""

    def __init__(self, samples: int = 4):
        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.samples = samples
        self.prog = self.ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self.tex_prog = self.ctx.program(vertex_shader=TEX_VERTEX_SHADER, fragment_shader=TEX_FRAGMENT_SHADER)
        self._fbos: dict[int, tuple] = {}

    def _fbo(self, size: tuple[int, int]):
        if size not in self._fbos:
            ms = self.ctx.framebuffer(
                color_attachments=[self.ctx.renderbuffer(size, 3, samples=self.samples)],
                depth_attachment=self.ctx.depth_renderbuffer(size, samples=self.samples))
            out = self.ctx.framebuffer(color_attachments=[self.ctx.renderbuffer(size, 3)])
            self._fbos[size] = (ms, out)
        return self._fbos[size]

    def render(self, scene: Scene, size: tuple[int, int], similarity_px: np.ndarray | None = None,
               src_size: tuple[int, int] | None = None) -> np.ndarray:
        """RGB uint8 [h, w, 3] of the camera's (w, h) image, or of the image ``similarity_px`` maps it to."""
        size = tuple(int(s) for s in size)
        src_size = size if src_size is None else tuple(src_size)
        if any(scene.camera.distortion):
            image = self._render_through_lens(scene, size, similarity_px, src_size)
        else:
            image = self._rasterize(scene, size, similarity_px, src_size)
        return image if scene.develop is None else scene.develop(image)

    def _render_through_lens(self, scene: Scene, size: tuple[int, int], similarity_px: np.ndarray | None,
                             src_size: tuple[int, int]) -> np.ndarray:
        """The distorted photo (or its image under ``similarity_px``): the pinhole image rendered through the
        affine map closest to the lens here, with a margin, then resampled where the lens bends it."""
        w, h = size
        to_out = np.eye(3)[:2] if similarity_px is None else np.asarray(similarity_px, float)
        gx, gy = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
        out_px = np.stack([gx.ravel(), gy.ravel()], 1)
        back = cv2.invertAffineTransform(to_out)
        photo_px = out_px @ back[:, :2].T + back[:, 2]
        aspect = src_size[0] / src_size[1]
        pinhole_px = ndc_to_pixels(scene.camera.undistort_ndc(pixels_to_ndc(photo_px, src_size), aspect), src_size)
        every = max(1, len(out_px) // 4000)
        fit = _fit_affine(pinhole_px[::every], out_px[::every])
        where = pinhole_px @ fit[:, :2].T + fit[:, 2]
        margin = int(np.ceil(min(np.abs(where - out_px).max(), max(size) / 2))) + 2
        fit[:, 2] += margin
        image = self._rasterize(scene, (w + 2 * margin, h + 2 * margin), fit, src_size)
        maps = (where + margin).astype(np.float32).reshape(h, w, 2)
        return cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _rasterize(self, scene: Scene, size: tuple[int, int], similarity_px: np.ndarray | None,
                   src_size: tuple[int, int]) -> np.ndarray:
        ms, out = self._fbo(size)
        ms.use()
        ms.clear(*scene.background, 1.0)
        sim = np.eye(3) if similarity_px is None else pixel_similarity_to_ndc(similarity_px, src_size, size)
        mvp = scene.camera.mvp(src_size[0] / src_size[1]).astype("f4")
        for prog in (self.prog, self.tex_prog):
            prog["mvp"].write(mvp.T.copy().tobytes())
            prog["image_similarity"].write(sim.astype("f4").T.copy().tobytes())
        lights = scene.lights
        for name in ("key_dir", "key_col", "fill_dir", "fill_col", "ambient"):
            self.prog[name].value = tuple(float(x) for x in getattr(lights, name))
        for prog in (self.prog, self.tex_prog):
            prog["eye"].value = tuple(float(x) for x in scene.camera.eye)
            prog["falloff"].value = lights.falloff
            prog["falloff_d0"].value = lights.falloff_d0
        self.prog["shininess"].value = lights.shininess
        self.prog["spec_strength"].value = lights.spec_strength
        for quad in scene.quads:
            self._draw_quad(quad, lights.falloff)
        for mesh in scene.meshes:
            self._draw_mesh(mesh.with_normals())
        self.ctx.copy_framebuffer(out, ms)
        data = np.frombuffer(out.read(components=3), np.uint8).reshape(size[1], size[0], 3)
        return data[::-1].copy()

    def _draw_mesh(self, mesh: Mesh) -> None:
        data = np.hstack([mesh.verts, mesh.normals, mesh.colors]).astype("f4")
        vbo = self.ctx.buffer(data.tobytes())
        ibo = self.ctx.buffer(mesh.faces.astype("i4").tobytes())
        vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f 3f", "in_pos", "in_normal", "in_color")], ibo)
        vao.render(moderngl.TRIANGLES)
        vao.release(), vbo.release(), ibo.release()

    def _draw_quad(self, quad: TexturedQuad, falloff: float) -> None:
        uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32) * quad.uv_scale
        data = np.hstack([quad.corners, uv]).astype("f4")
        vbo = self.ctx.buffer(data.tobytes())
        ibo = self.ctx.buffer(np.array([0, 1, 2, 0, 2, 3], "i4").tobytes())
        tex = self.ctx.texture((quad.texture.shape[1], quad.texture.shape[0]), 3,
                               np.ascontiguousarray(quad.texture).tobytes())
        tex.repeat_x = tex.repeat_y = True
        tex.build_mipmaps()
        tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        tex.use(0)
        self.tex_prog["tex"].value = 0
        self.tex_prog["brightness"].value = quad.brightness
        if quad.multiply:  # a shadow: the colour below times the texture, unlit
            self.ctx.enable(moderngl.BLEND)
            self.ctx.blend_func = moderngl.DST_COLOR, moderngl.ZERO
            self.tex_prog["falloff"].value = 0.0
        vao = self.ctx.vertex_array(self.tex_prog, [(vbo, "3f 2f", "in_pos", "in_uv")], ibo)
        vao.render(moderngl.TRIANGLES)
        if quad.multiply:
            self.ctx.disable(moderngl.BLEND)
            self.tex_prog["falloff"].value = falloff
        vao.release(), vbo.release(), ibo.release(), tex.release()
