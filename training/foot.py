"""FIND feet with a bendable big toe: shape/pose/texture latents -> smooth mesh + the five landmarks.

Coordinates are FIND's: metres, +x heel to toe, +z up, medial side -y (a right foot).
The landmark and angle definition is the contract in ../shared/find/README.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort
import scipy.sparse as sp

from toeangle.geometry import dorsiflexion_deg
from toeangle.schema import LANDMARK_NAMES as LANDMARKS  # noqa: F401  (re-exported: the contract's order, one definition)


def find_dir() -> Path:
    """FIND lives beside the repo (never committed); TOEANGLE_FIND_DIR overrides."""
    default = Path(__file__).resolve().parents[2] / "shared" / "find"
    return Path(os.environ.get("TOEANGLE_FIND_DIR", default))


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    verts, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(t) for t in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(t.split("/")[0]) - 1 for t in line.split()[1:4]])
    return np.asarray(verts, np.float32), np.asarray(faces, np.int64)


def loop_operator(faces: np.ndarray, n_verts: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """One step of Loop subdivision of a closed mesh as a linear map (fine = S @ coarse) and the new faces.

    Topology never changes between feet, so the map is built once and every foot is subdivided
    by a sparse product.
    """
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    opposite = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]])
    key = np.sort(edges, axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n_edges = len(uniq)
    rows, cols, vals = [], [], []
    # Odd (edge) vertices: 3/8 of each end, 1/8 of each opposite vertex (closed mesh: two per edge).
    for e_idx, (a, b) in enumerate(uniq):
        rows += [n_verts + e_idx] * 2
        cols += [a, b]
        vals += [3 / 8, 3 / 8]
    rows += list(n_verts + inverse)
    cols += list(opposite)
    vals += [1 / 8] * len(opposite)
    # Even vertices: Warren's weights.
    neighbours = [set() for _ in range(n_verts)]
    for a, b in uniq:
        neighbours[a].add(b)
        neighbours[b].add(a)
    for v, nb in enumerate(neighbours):
        n = len(nb)
        beta = 3 / 16 if n == 3 else 3 / (8 * n)
        rows.append(v), cols.append(v), vals.append(1 - n * beta)
        for u in nb:
            rows.append(v), cols.append(u), vals.append(beta)
    op = sp.csr_matrix((vals, (rows, cols)), shape=(n_verts + n_edges, n_verts))
    e = (n_verts + inverse).reshape(3, -1).T  # edge vertex of (v0v1, v1v2, v2v0) per face
    v0, v1, v2 = faces.T
    new_faces = np.concatenate([
        np.stack([v0, e[:, 0], e[:, 2]], 1), np.stack([v1, e[:, 1], e[:, 0]], 1),
        np.stack([v2, e[:, 2], e[:, 1]], 1), np.stack([e[:, 0], e[:, 1], e[:, 2]], 1)])
    return op, new_faces


@dataclass
class Foot:
    """One posed foot: the smooth render mesh and the coarse vertices the landmarks are defined on."""

    coarse: np.ndarray  # [1002, 3] deformed template vertices
    verts: np.ndarray  # [N, 3] subdivided
    faces: np.ndarray  # [M, 3]
    colors: np.ndarray  # [N, 3] 0..1

    def landmarks(self, model: FindModel) -> dict[str, np.ndarray]:
        return {name: self.coarse[idx].mean(0) for name, idx in model.landmark_vertices.items()}


class FindModel:
    """The FIND network plus everything fixed by the template (subdivision, landmark vertices)."""

    def __init__(self, root: Path | None = None, subdivisions: int = 2):
        root = root or find_dir()
        self.template, coarse_faces = _read_obj(root / "template.obj")
        self.latents = json.loads((root / "latents.json").read_text())
        self.landmark_vertices = {k: np.asarray(v) for k, v in json.loads((root / "landmarks.json").read_text()).items()}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(root / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        n = len(self.template)
        op, faces = sp.identity(n, format="csr"), coarse_faces
        for _ in range(subdivisions):
            step, faces = loop_operator(faces, op.shape[0])
            op = step @ op
        self.subdivide = op.tocsr()
        self.faces = faces.astype(np.int32)

    def latent(self, kind: str, z: np.ndarray) -> np.ndarray:
        spec = self.latents[kind]
        z = np.clip(np.asarray(z, np.float64), -2.5, 2.5)
        return (np.asarray(spec["mean"]) + (np.asarray(spec["V"]).T * np.asarray(spec["stddev"])) @ z).astype(np.float32)

    @cached_property
    def pose_examples(self) -> list[tuple[list[str], np.ndarray]]:
        return [(p["pose"], np.asarray(p["pca"])) for p in self.latents["pose_examples"]]

    def foot(self, shape_z, pose_z, tex_z, toe_bend_deg: float = 0.0) -> Foot:
        """A foot from latent codes (z-scores), with the big-toe joint bent by ``toe_bend_deg`` (+ = up)."""
        n = len(self.template)
        feeds = {"points": self.template,
                 "shapevec": np.repeat(self.latent("shape", shape_z)[None], n, 0),
                 "posevec": np.repeat(self.latent("pose", pose_z)[None], n, 0),
                 "texvec": np.repeat(self.latent("tex", tex_z)[None], n, 0)}
        disp, col = self.session.run(None, feeds)
        coarse = self.template + disp
        coarse = bend_toes(coarse, self.landmark_vertices, toe_bend_deg)
        verts = self.subdivide @ coarse
        colors = np.clip(self.subdivide @ col, 0, 1)
        return Foot(coarse=coarse.astype(np.float32), verts=verts.astype(np.float32), faces=self.faces,
                    colors=colors.astype(np.float32))


def bend_toes(verts: np.ndarray, landmark_vertices: dict[str, np.ndarray], degrees: float,
              zone_m: float = 0.012) -> np.ndarray:
    """Rotate the toes about a medial-lateral axis through first_mtp, blended over a short zone.

    The joint line runs obliquely (the lesser MTP joints sit further back, laterally), so the
    lesser toes bend with the hallux as they do in a real extension test.
    """
    if degrees == 0:
        return verts
    mtp = verts[landmark_vertices["first_mtp"]].mean(0)
    lateral = np.array([-0.35, 1.0, 0.0])  # joint line: ~3.5 cm back per 10 cm across the forefoot
    lateral /= np.linalg.norm(lateral)
    forward = np.array([lateral[1], -lateral[0], 0.0])  # perpendicular to the joint line, toward the toes
    dist = (verts - mtp) @ forward
    t = np.clip((dist + zone_m / 2) / zone_m, 0, 1)
    weight = t * t * (3 - 2 * t)
    angles = np.radians(degrees) * weight
    # Rotation about `lateral` through mtp; positive lifts the toes (+x toward +z).
    rel = verts - mtp
    k = lateral
    cos, sin = np.cos(-angles)[:, None], np.sin(-angles)[:, None]
    rotated = rel * cos + np.cross(k, rel) * sin + k * (rel @ k)[:, None] * (1 - cos)
    return (mtp + rotated).astype(np.float32)


def sagittal_angle(landmarks: dict[str, np.ndarray]) -> float:
    """The contract's 3D ground truth: the dorsiflexion angle in the x-z plane."""
    pts = {k: np.asarray(v)[[0, 2]] for k, v in landmarks.items()}
    return float(dorsiflexion_deg(pts["heel"], pts["first_metatarsal"], pts["first_mtp"], pts["hallux_ip"]))
