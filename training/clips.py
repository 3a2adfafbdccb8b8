"""Rendered clips with the true angle per frame: a FIND foot rising onto its toes (or pushing off, step
after step), with camera shake and motion blur, for bench/video_accuracy.py, bench/video.py and the tests.

The scene (camera, lights, wall, skin, side) is a benchmark scene from SceneSampler, seen near side-on;
the foot is rebuilt every frame: the big toe bent by the frame's angle and the whole foot turned about
the big-toe joint so that the toe stays flat on the floor while the heel rises (a heel raise), which is
how dorsiflexion grows in the test. Seeds from CLIPS_START are never rendered for training
(dataset.render_set refuses seeds from BENCH_START on).

    .venv/bin/python training/clips.py OUT.mp4 [--seed 4000000] [--frames 60] [--fps 30] [--long-side 1280]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import cv2
import numpy as np
from foot import bend_toes, sagittal_angle
from render import Mesh, Renderer, TexturedQuad
from synth import SceneSampler, _rot, project, texture

CLIPS_START = 4_000_000


@dataclass
class RenderedClip:
    frames: list[np.ndarray]  # RGB
    fps: float
    angles_deg: np.ndarray  # the true (3D, sagittal) angle per frame
    landmarks: list[dict[str, np.ndarray]]  # projected true points per frame (pixels)
    peak_frame: int


def heel_raise_curve(n: int, rise_deg: float, stepping: int = 0, start: float = 0.15, length: float = 0.7) -> np.ndarray:
    """The heel's rise angle per frame: one raise from ``start`` lasting ``length`` (fractions of the clip),
    or ``stepping`` quick rises (push-offs) one after another."""
    t = np.linspace(0, 1, n)
    if stepping:
        phase = (t * stepping) % 1.0
        return rise_deg * np.clip(np.sin(np.pi * np.clip((phase - 0.2) / 0.6, 0, 1)), 0, None) ** 2
    return rise_deg * np.clip(np.sin(np.pi * np.clip((t - start) / length, 0, 1)), 0, None) ** 1.5


def render_clip(seed: int, n_frames: int = 60, fps: float = 30.0, long_side: int = 1280, rise_deg: float | None = None,
                shake_px: float = 2.0, blur: float = 1.0, stepping: int = 0, foot_frac: float = 0.9, sampler: SceneSampler | None = None,
                renderer: Renderer | None = None) -> RenderedClip:
    rng = np.random.default_rng([seed, 21])
    sampler, renderer = sampler or SceneSampler(), renderer or Renderer()
    scene, truth = sampler.sample(seed, off_axis_max=12.0, wide_view_share=0.0, lateral_share=0.0)
    m = sampler.model
    draw = np.random.default_rng(seed)  # the sampler's own first draws: the same foot it framed
    shape_z, tex_z = draw.normal(0, 1, 3), draw.normal(0, 1, 3)
    pose_z = m.pose_examples[draw.integers(len(m.pose_examples))][1] if draw.random() < 0.7 else draw.normal(0, 0.8, 3)
    base = m.foot(shape_z, pose_z, tex_z)
    base_lm = base.landmarks(m)
    flat_deg = rng.uniform(25, 35)  # the angle standing, toe flat on the floor
    start, length = rng.uniform(0.05, 0.3), rng.uniform(0.5, 0.65)  # the peak's frame differs from clip to clip
    rise = heel_raise_curve(n_frames, rise_deg if rise_deg is not None else rng.uniform(15, 40), stepping, start, length)
    flip = np.array([1, -1, 1], np.float32) if truth.side == "left" else np.ones(3, np.float32)
    colors = scene.meshes[0].colors
    size = (long_side, round(long_side * 9 / 16))
    scene = replace(scene, camera=_framed(scene.camera, {k: v * flip for k, v in base_lm.items()}, foot_frac))
    frames, angles, points = [], [], []
    floor_z = None
    shake = np.zeros(2)
    for i in range(n_frames):
        coarse = bend_toes(base.coarse, m.landmark_vertices, flat_deg + rise[i] - sagittal_angle(base_lm))
        lm = {k: coarse[idx].mean(0) for k, idx in m.landmark_vertices.items()}
        pivot = lm["first_mtp"]
        turn = _rot([0, 1, 0], rise[i])  # heel up about the joint; the toe stays on the floor
        verts = ((m.subdivide @ coarse) - pivot) @ turn.T + pivot
        lm = {k: (v - pivot) @ turn.T + pivot for k, v in lm.items()}
        if floor_z is None:
            floor_z = float(verts[:, 2].min())
        mesh = Mesh((verts * flip).astype(np.float32), m.faces[:, ::-1].copy() if truth.side == "left" else m.faces,
                    colors)
        shake = 0.8 * shake + rng.normal(0, shake_px, 2)
        frame_scene = replace(scene, meshes=[mesh], quads=[scene.quads[0], _floor(floor_z, rng if i == 0 else None)],
                              camera=_shaken(scene.camera, shake, size))
        if i == 0:
            scene = replace(scene, quads=[scene.quads[0], frame_scene.quads[1]])
        truth_frame = replace(truth, landmarks3d={k: v * flip for k, v in lm.items()})
        rgb = renderer.render(frame_scene, size)
        speed = abs(rise[min(i + 1, n_frames - 1)] - rise[max(i - 1, 0)]) / 2
        frames.append(_blurred(rgb, blur * (0.6 + speed), rng))
        angles.append(sagittal_angle(truth_frame.landmarks3d))
        points.append(project(frame_scene, truth_frame, size))
    angles = np.array(angles)
    return RenderedClip(frames, fps, angles, points, int(np.argmax(angles)))


_FLOOR: dict = {}


def _floor(z: float, rng) -> TexturedQuad:
    if rng is not None:
        _FLOOR["tex"], _FLOOR["scale"] = texture(rng), rng.uniform(4, 40)
    f = 3.0
    return TexturedQuad(np.array([[-f, -f, z], [f, -f, z], [f, f, z], [-f, f, z]]), _FLOOR["tex"], _FLOOR["scale"], 0.9)


def _framed(camera, landmarks: dict[str, np.ndarray], foot_frac: float):
    """The camera moved along its line of sight so that the foot spans ``foot_frac`` of the frame's height,
    aimed at the foot's middle: a clip is filmed to show the foot."""
    centre = (landmarks["heel"] + landmarks["hallux_tip"]) / 2
    foot_len = float(np.linalg.norm(landmarks["hallux_tip"] - landmarks["heel"]))
    dist = foot_len / foot_frac / (2 * np.tan(np.radians(camera.fov_y_deg) / 2))
    direction = (camera.eye - camera.target) / np.linalg.norm(camera.eye - camera.target)
    return replace(camera, eye=centre + direction * dist, target=centre, near=dist * 0.2, far=dist * 10)


def _shaken(camera, shake_px: np.ndarray, size: tuple[int, int]):
    """The camera turned slightly, as a hand-held phone shakes: ``shake_px`` pixels at the target."""
    dist = np.linalg.norm(camera.target - camera.eye)
    px = 2 * dist * np.tan(np.radians(camera.fov_y_deg) / 2) / size[1]
    forward = (camera.target - camera.eye) / dist
    right = np.cross(forward, camera.up)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return replace(camera, target=camera.target + (shake_px[0] * right + shake_px[1] * up) * px)


def _blurred(rgb: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Motion blur along a random direction, a little focus blur and sensor noise."""
    k = max(1, int(round(2 * strength)) * 2 + 1)
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1 / k
    rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(60, 120)), 1)
    x = cv2.filter2D(rgb.astype(np.float32), -1, cv2.warpAffine(kernel, rot, (k, k)))
    x = cv2.GaussianBlur(x, (0, 0), 0.6) + rng.normal(0, 3.0, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def write_mp4(clip: RenderedClip, path: str) -> None:
    """MPEG-4 part 2 (OpenCV's own encoder; its wheels have no H.264 encoder)."""
    h, w = clip.frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), clip.fps, (w, h))
    for rgb in clip.frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=CLIPS_START)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--long-side", type=int, default=1280)
    parser.add_argument("--stepping", type=int, default=0, help="push-offs instead of one heel raise")
    args = parser.parse_args()
    clip = render_clip(args.seed, args.frames, args.fps, args.long_side, stepping=args.stepping)
    write_mp4(clip, args.out)
    print(f"{args.out}: {len(clip.frames)} frames, true peak {clip.angles_deg.max():.1f} deg at frame {clip.peak_frame}")
    print("true angle per frame:", " ".join(f"{a:.1f}" for a in clip.angles_deg))


if __name__ == "__main__":
    main()
