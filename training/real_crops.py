"""Stage-2 crops of the annotated real photos whose licence allows training: the only real skin the model sees.

Every entry of bench/real/annotations.json that bench/realset.py calls trainable (a licence that allows it,
all five points placed: today MIT photos of ../shared/real-photos) is decoded as the product decodes it, mirrored as well
(a mirrored photo is a photo of the other foot), and cut ``crops_per_photo`` times around its annotated
forefoot exactly as dataset.py cuts a render (forefoot_matrix, the same jitter, as a first stage misses) with
the runtime's resampling (warp_crop). What a photo does not say is left unlabelled: the 3D angle and the view
(NaN) and the toe's state (-1); the points are the annotation. Photos with no licence are measured by
bench/real.py and never reach this file's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from synth import forefoot_matrix

from toeangle.decode import decode_image
from toeangle.detectors.contract import STAGES
from toeangle.detectors.crops import FOREFOOT, apply_affine
from toeangle.detectors.keypoint import warp_crop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from realset import find_photo, load_annotations, points_of, trainable  # noqa: E402

CROP_JITTER = 0.07
"""dataset.py's: how far (metatarsal lengths, 1 sigma) the crop's defining points wander, as stage 1's do."""


def build_real_set(out: Path, crops_per_photo: int, seed: int, decode_max_side: int = 2048) -> None:
    """Write the crops of every trainable photo (and its mirror image) to ``out`` in a rendered set's form."""
    rng = np.random.default_rng(seed)
    size = STAGES[2].input_size
    photos = trainable(load_annotations())
    if not photos:
        raise SystemExit("no annotated photo with a licence that allows training (bench/real/annotations.json)")
    crops, points, posture = [], [], []
    for entry in photos:
        found = find_photo(entry)
        if found.data is None:
            raise SystemExit(f"{entry['id']}: photo not found ({found.where})")
        image = decode_image(found.data, max_side=decode_max_side)
        sx, sy = image.scale
        annotated = {n: (p + 0.5) / [sx, sy] - 0.5 for n, p in points_of(entry["points"]).items()}
        width = image.rgb.shape[1]
        for mirrored in (False, True):
            rgb = np.ascontiguousarray(image.rgb[:, ::-1]) if mirrored else image.rgb
            pts = {n: np.array([width - 1 - p[0], p[1]]) if mirrored else p for n, p in annotated.items()}
            for _ in range(crops_per_photo):
                matrix = forefoot_matrix(pts, size, rng, jitter=CROP_JITTER)
                crops.append(warp_crop(rgb, matrix, size))
                points.append(apply_affine(matrix, np.stack([pts[n] for n in FOREFOOT])))
                posture.append(entry.get("posture") or {})
    n = len(crops)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, seeds=np.full(n, -1), stage2=np.stack(crops), xy2=np.stack(points).astype(np.float32),
             stage2_ok=np.ones(n, bool), angle=np.full(n, np.nan), off_axis=np.full(n, np.nan),
             lateral=np.zeros(n, bool), standing=np.array([bool(p.get("standing")) for p in posture]),
             heel_raised=np.array([bool(p.get("heel_raised")) for p in posture]), toe_state=np.full(n, -1))
    print(f"{n} crops of {len(photos)} licensed real photos ({', '.join(e['id'] for e in photos)}) -> {out}",
          flush=True)
