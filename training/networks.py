"""The keypoint networks: one class per backbone, named in the recipes (``network = ...``).

A network maps the contract's input (``toeangle.detectors.contract``: float32 RGB 0-255, NCHW) to a
dict with at least ``coords``, ``spread`` and ``logits`` (the heatmaps); stage-1 networks add the
image-level heads (``presence``, ``in_frame``, ``off_axis``), stage-2 networks the Gaussian view
heads. ``export`` writes what ships: the contract's outputs, in its order, and nothing else.

A new backbone is a class here (e.g. a KeypointNet whose ``normalise`` and ``features`` are another
network's, its feature widths passed as ``widths`` so that the heads fit), an entry in NETWORKS, and
``network = "<its name>"`` in a recipe.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from toeangle.detectors.contract import DEGREES_PER_UNIT, INPUT_NAME, LOG_SIGMA_RANGE, STAGE1_OFF_AXIS_MAX_DEG, STAGES


def conv(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class KeypointNet(nn.Module):
    """Encoder to stride 32, decoder with skips back to ``out_stride``, heatmaps soft-argmaxed."""

    def __init__(self, keypoints: int, widths=(16, 24, 48, 64, 96), out_stride: int = 4, image_heads: bool = False,
                 view_head: bool = False, perspective_head: bool = False, off_axis_head: bool = False):
        super().__init__()
        w = widths
        self.out_stride = out_stride
        self.stem = nn.Sequential(conv(3, w[0], 2), conv(w[0], w[0]))  # /2
        self.down = nn.ModuleList([nn.Sequential(conv(w[i], w[i + 1], 2), conv(w[i + 1], w[i + 1]))
                                   for i in range(len(w) - 1)])  # /4 /8 /16 /32
        self.up = nn.ModuleList()
        levels = {2: 0, 4: 1, 8: 2, 16: 3}
        self.skip_levels = [lv for lv in (16, 8, 4, 2) if lv >= out_stride]
        cin = w[-1]
        for lv in self.skip_levels:
            skip = w[levels[lv]]
            self.up.append(conv(cin + skip, skip))
            cin = skip
        self.heatmap = nn.Conv2d(cin, keypoints, 1)
        self.image_heads = image_heads
        if image_heads:
            self.head = nn.Sequential(nn.Linear(w[-1] + keypoints, 64), nn.ReLU(inplace=True), nn.Linear(64, 2 + keypoints))
        inputs = w[-1] + 5 * w[-2] + keypoints * (w[-2] + w[-3] + 2) + 2  # see view_features
        # 3D minus 2D angle, its log-sigma, whether the crop shows the sole up (heel misplaced), and whether
        # it shows the foot's outer side (the first MTP joint hidden behind the foot)
        self.view_head = view_mlp(inputs, 4) if view_head else None
        # the view correction for points placed by hand (3D minus the true 2D angle), its log-sigma
        self.perspective_head = view_mlp(inputs, 2) if perspective_head else None
        # how far the camera is from side-on, and its log-sigma (v8): the quality gate's view check
        self.off_axis_head = view_mlp(inputs, 2) if off_axis_head else None

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """The contract's 0-255 input -> what the backbone was trained on."""
        return x / 255.0 - 0.5

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The backbone: the normalised input -> the feature maps from stride 2 to 32 (the heads read the
        last three) and the heatmap logits at ``out_stride``. Another backbone replaces this and
        ``normalise`` (and the layers they use) and keeps the heads."""
        feats = [self.stem(x)]
        for block in self.down:
            feats.append(block(feats[-1]))
        y = feats[-1]
        for lv, block in zip(self.skip_levels, self.up):
            skip = feats[{2: 0, 4: 1, 8: 2, 16: 3}[lv]]
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
        return feats, self.heatmap(y)

    def forward(self, x):
        x = self.normalise(x)
        feats, logits = self.features(x)
        coords, spread, probs = soft_argmax(logits, self.out_stride)
        out = {"coords": coords, "spread": spread, "logits": logits, "probs": probs}
        if self.image_heads:
            out["head_inputs"] = torch.cat([feats[-1].mean((2, 3)), logits.flatten(2).amax(2)], 1)
            h = self.head(out["head_inputs"])
            out.update(presence=h[:, 0], off_axis=torch.sigmoid(h[:, 1]) * STAGE1_OFF_AXIS_MAX_DEG, in_frame=h[:, 2:])
        if self.view_head is not None:
            out["view_inputs"] = view_features(feats, coords.detach(), x.shape[-1])
            v = self.view_head(out["view_inputs"])
            correction, sigma = degrees_and_sigma(v)
            out.update(correction=correction, correction_sigma=sigma, sole_up=v[:, 2], lateral=v[:, 3])
        if self.perspective_head is not None:
            perspective, sigma = degrees_and_sigma(self.perspective_head(out["view_inputs"]))
            out.update(perspective=perspective, perspective_sigma=sigma)
        if self.off_axis_head is not None:
            off_axis, sigma = degrees_and_sigma(self.off_axis_head(out["view_inputs"]))
            out.update(off_axis=off_axis, off_axis_sigma=sigma)
        return out


def view_mlp(inputs: int, outputs: int) -> nn.Sequential:
    """A head on view_features, with dropout on its inputs and hidden units (VIEW_DROPOUT)."""
    return nn.Sequential(nn.Dropout(VIEW_DROPOUT / 2), nn.Linear(inputs, VIEW_HIDDEN), nn.ReLU(inplace=True),
                         nn.Dropout(VIEW_DROPOUT), nn.Linear(VIEW_HIDDEN, outputs))


def degrees_and_sigma(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A correction head's first two columns in degrees: the value (learnt in tens of degrees) and its
    sigma (learnt as a clamped log, as gaussian_nll reads it)."""
    return out[:, 0] * DEGREES_PER_UNIT, torch.exp(out[:, 1].clamp(*LOG_SIGMA_RANGE)) * DEGREES_PER_UNIT


def view_features(feats: list[torch.Tensor], coords: torch.Tensor, size: int) -> torch.Tensor:
    """What the view head sees: how the foot is turned, from the deep features pooled over the crop and
    over its quadrants and read at each forefoot point (stride 16 and 8), plus the points and the
    crop's 2D angle."""
    u, v = coords[:, 1] - coords[:, 0], coords[:, 2] - coords[:, 1]
    u = u / u.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    v = v / v.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    turn = torch.stack([(u * v).sum(-1), u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]], 1)
    grid = ((coords + 0.5) / size * 2 - 1)[:, None]  # [b, 1, k, 2] in grid_sample's align_corners=False units
    at_points = [F.grid_sample(f, grid, align_corners=False)[:, :, 0].flatten(1) for f in (feats[-2], feats[-3])]
    return torch.cat([feats[-1].mean((2, 3)), feats[-2].mean((2, 3)), F.adaptive_avg_pool2d(feats[-2], 2).flatten(1),
                      *at_points, (coords / size - 0.5).flatten(1), turn], 1)


def soft_argmax(logits: torch.Tensor, stride: int):
    b, k, h, w = logits.shape
    probs = torch.softmax(logits.flatten(2), -1).view(b, k, h, w)
    ys = (torch.arange(h, dtype=logits.dtype) + 0.5) * stride - 0.5
    xs = (torch.arange(w, dtype=logits.dtype) + 0.5) * stride - 0.5
    px, py = probs.sum(2), probs.sum(3)
    x = (px * xs).sum(-1)
    y = (py * ys).sum(-1)
    var = (px * xs ** 2).sum(-1) - x ** 2 + (py * ys ** 2).sum(-1) - y ** 2
    spread = torch.sqrt(torch.clamp(var / 2, min=1e-6))
    return torch.stack([x, y], -1), spread, probs



VIEW_HIDDEN = 256
"""The view head's hidden width. v4 measurements (validation views near side-on, correction from the
true 2D points; heads fit on the renders of seeds 0-23,999 and 40,000-55,999): v3's inputs (pooled
features only) with 64 units MAE 2.97 / p95 8.33; adding the quadrant pooling and the features at
the points, 128 units 2.64 / 7.11, 256 units 2.39 / 6.94 (2.52 / 6.66 with another seed), 512 units
2.50 / 6.86."""
VIEW_DROPOUT = 0.3
"""Dropout on the view head's hidden units (half of it on its inputs). Without it the head learns its
training crops (correction MAE 0.8 there) and its sigma with them: on validation 1.645 sigma covered 33%
of the errors. With 0.3: MAE 2.45 / p95 6.74, coverage 86%; 0.5: 2.51 / 7.33, 90%."""



NETWORKS = {
    # the U-shaped CNNs of v1-v8: encoder to stride 32, decoder with skips, heatmaps soft-argmaxed
    "unet_stage1": dict(keypoints=len(STAGES[1].keypoints), widths=(12, 24, 40, 64, 96), out_stride=4, image_heads=True),
    "unet_stage2": dict(keypoints=len(STAGES[2].keypoints), widths=(16, 24, 40, 64, 96), out_stride=2, view_head=True),
}
HEADS = ("view", "perspective", "off_axis")
"""The stage-2 Gaussian heads, each fitted on the frozen network by a recipe step (``fit = ...``)."""


def build(network: str, heads: set[str] = frozenset()) -> KeypointNet:
    """The named network with these optional heads (a head not yet fitted is not built: building it
    would draw from the random state and change the fits that follow)."""
    spec = dict(NETWORKS[network])
    for head in heads:
        spec[f"{head}_head"] = True
    return KeypointNet(**spec)


class Exported(nn.Module):
    """What ships: coordinates, spread and (stage 1) the image heads or (stage 2) all three view heads,
    in the contract's order; no heatmaps."""

    def __init__(self, model: KeypointNet):
        super().__init__()
        self.model = model

    def forward(self, image):
        out = self.model(image)
        if self.model.image_heads:
            return out["coords"], out["spread"], torch.sigmoid(out["presence"]), torch.sigmoid(out["in_frame"]), out["off_axis"]
        # sole-up as a logit: the runtime compares it across crops, and its sigmoid saturates at 1.0 in float32
        return (out["coords"], out["spread"], out["correction"], out["correction_sigma"], out["sole_up"],
                torch.sigmoid(out["lateral"]), out["perspective"], out["perspective_sigma"], out["off_axis"])


def export(model: KeypointNet, stage: int, path: Path) -> None:
    """Write the ONNX file the runtime loads: the contract's input and outputs, batch size free."""
    model.eval()
    contract = STAGES[stage]
    names = contract.output_names
    size = contract.input_size
    torch.onnx.export(Exported(model), torch.zeros(1, 3, size, size), str(path), input_names=[INPUT_NAME],
                      output_names=names, dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}},
                      opset_version=17, dynamo=False)
