"""Train the two keypoint stages on rendered data and export them to ONNX.

    python training/train.py --stage 1 --data data/d_0_8000.npz data/d_8000_16000.npz ... --val data/d_900000_900600.npz
    python training/train.py --stage 2 ...

Both stages are small U-shaped CNNs whose heatmaps are decoded by a spatial soft-argmax
inside the network: coordinates come out sub-pixel, and the softmax's spread is the
per-landmark uncertainty. Stage 1 sees the whole (letterboxed) photo and also says whether
there is a foot, which landmarks are in frame, and how far the view is from side-on.
Stage 2 sees the rotation-normalised forefoot crop and places the four points that set the
angle.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from toeangle.geometry import dorsiflexion_deg




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

    def forward(self, x):
        x = x / 255.0 - 0.5
        feats = [self.stem(x)]
        for block in self.down:
            feats.append(block(feats[-1]))
        y = feats[-1]
        for lv, block in zip(self.skip_levels, self.up):
            skip = feats[{2: 0, 4: 1, 8: 2, 16: 3}[lv]]
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
        logits = self.heatmap(y)
        coords, spread, probs = soft_argmax(logits, self.out_stride)
        out = {"coords": coords, "spread": spread, "logits": logits, "probs": probs}
        if self.image_heads:
            out["head_inputs"] = torch.cat([feats[-1].mean((2, 3)), logits.flatten(2).amax(2)], 1)
            h = self.head(out["head_inputs"])
            out.update(presence=h[:, 0], off_axis=torch.sigmoid(h[:, 1]) * 90.0, in_frame=h[:, 2:])
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
    return out[:, 0] * 10.0, torch.exp(out[:, 1].clamp(-3, 4)) * 10.0


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


def gaussian_targets(xy: torch.Tensor, h: int, w: int, stride: int, sigma_cells: float = 1.0) -> torch.Tensor:
    ys = (torch.arange(h) + 0.5) * stride - 0.5
    xs = (torch.arange(w) + 0.5) * stride - 0.5
    dx = (xs[None, None, None, :] - xy[..., 0, None, None]) / stride
    dy = (ys[None, None, :, None] - xy[..., 1, None, None]) / stride
    g = torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma_cells ** 2))
    return g / g.sum((2, 3), keepdim=True).clamp(min=1e-8)


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

LATERAL_WEIGHT = 0.3
"""The outer-side loss's weight in the view head. Measured with v3's head on the validation views near side-on
(one run each): weight 1 gave correction MAE 3.21 / p95 8.64 and 87% of lateral views caught,
0.3 gave 3.02 / 8.09 and 85%, no outer-side output 3.19 / 9.12 (v2's head: 2.99 / 8.2)."""

STAGES = {
    1: dict(keypoints=5, widths=(12, 24, 40, 64, 96), out_stride=4, image_heads=True, image="stage1", xy="xy1"),
    2: dict(keypoints=4, widths=(16, 24, 40, 64, 96), out_stride=2, image_heads=False, view_head=True, image="stage2",
            xy="xy2"),
}


def build(stage: int, perspective_head: bool = False, off_axis_head: bool = False) -> KeypointNet:
    spec = STAGES[stage]
    return KeypointNet(spec["keypoints"], spec["widths"], spec["out_stride"], spec["image_heads"],
                       spec.get("view_head", False), perspective_head, off_axis_head)


OTHER_STAGE = {1: ("stage2", "xy2"), 2: ("stage1", "xy1", "in_frame", "presence")}
"""What each stage leaves unread in a rendered set."""


def load(paths: list[Path], stage: int, size: int) -> dict[str, torch.Tensor]:
    """Rendered samples, resized to the stage's input size (pixel centres map through the scale)."""
    spec = STAGES[stage]
    parts = []
    for path in paths:
        with np.load(path) as stored:  # only this stage's arrays: eleven sets of both stages do not fit twice in RAM
            data = {k: stored[k] for k in stored.files if k not in OTHER_STAGE[stage]}
        keep = np.ones(len(data["seeds"]), bool) if stage == 1 else data["stage2_ok"].astype(bool)
        data = {k: v[keep] for k, v in data.items()}
        images, xy = data[spec["image"]], data[spec["xy"]]
        if images.shape[1] != size:  # sets rendered at another crop size
            scale = size / images.shape[1]
            data[spec["image"]] = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])
            data[spec["xy"]] = (xy + 0.5) * scale - 0.5
        parts.append(data)
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out = {"image": torch.from_numpy(data[spec["image"]]).permute(0, 3, 1, 2).contiguous(),
           "xy": torch.from_numpy(data[spec["xy"]]).float(),
           "angle": torch.from_numpy(data["angle"]).float(),
           "off_axis": torch.from_numpy(data["off_axis"]).float(),
           "lateral": torch.from_numpy(data["lateral"]).float()}
    if stage == 1:
        out.update(in_frame=torch.from_numpy(data["in_frame"]).float(),
                   presence=torch.from_numpy(data["presence"]).float())
    return out


def loss_fn(out, batch, stage: int, stride: int, head_weight: float = 1.0):
    xy = batch["xy"]
    b, k = xy.shape[:2]
    weight = batch["in_frame"] if stage == 1 else torch.ones(b, k)
    h, w = out["logits"].shape[-2:]
    target = gaussian_targets(xy, h, w, stride)
    log_probs = torch.log_softmax(out["logits"].flatten(2), -1).view_as(out["logits"])
    ce = -(target * log_probs).sum((2, 3))
    coord = (out["coords"] - xy).abs().sum(-1) / stride
    denom = weight.sum().clamp(min=1)
    loss = ((ce + 2.0 * coord) * weight).sum() / denom
    logs = {"coord_px": float((coord * weight).sum().detach() / denom * stride)}
    if stage == 1:
        present = batch["presence"]
        heads = F.binary_cross_entropy_with_logits(out["presence"], present)
        heads = heads + F.binary_cross_entropy_with_logits(out["in_frame"], batch["in_frame"], reduction="none").mean(1).mul(present).sum() / present.sum().clamp(min=1)
        heads = heads + (F.smooth_l1_loss(out["off_axis"] / 10, batch["off_axis"] / 10, reduction="none") * present).sum() / present.sum().clamp(min=1)
        loss = loss + head_weight * heads
    return loss, logs


def descend(opt, sched, loss: torch.Tensor, step: int, steps: int) -> int:
    """One optimiser step on a one-cycle schedule of ``steps`` (which must not be stepped past its end)."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step < steps - 1:
        sched.step()
    return step + 1


def augment(batch, stage: int, gen: torch.Generator, jitter: float = 0.0):
    img, xy = batch["image"].float(), batch["xy"].clone()
    if stage == 1:  # a mirrored photo is a valid photo of the other foot
        flip = torch.rand(len(img), generator=gen) < 0.5
        img[flip] = img[flip].flip(-1)
        xy[flip, :, 0] = img.shape[-1] - 1 - xy[flip, :, 0]
    if jitter:
        img, xy = similarity_jitter(img, xy, jitter, gen)
    gain = 1 + 0.15 * (torch.rand(len(img), 3, 1, 1, generator=gen) - 0.5)
    img = (img * gain).clamp(0, 255)
    return {**batch, "image": img, "xy": xy}


def similarity_jitter(img: torch.Tensor, xy: torch.Tensor, amount: float, gen: torch.Generator):
    """Turn each square image about its centre by up to ``amount`` radians, scale it by up to ``amount``
    of its size and shift it by up to ``30 * amount`` pixels (edges mirrored in).

    The runtime cuts its crops around stage 1's and its own points, never exactly where the
    renderer cut them. Angles between the points do not change, so the view targets stay exact.
    """
    b, size = len(img), img.shape[-1]
    turn = (2 * torch.rand(b, generator=gen) - 1) * amount
    scale = 1 + (2 * torch.rand(b, generator=gen) - 1) * amount
    shift = (2 * torch.rand(b, 2, generator=gen) - 1) * amount * 30
    cos, sin = torch.cos(turn) * scale, torch.sin(turn) * scale
    forward = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [b, 2, 2]
    centre = (size - 1) / 2
    xy = (xy - centre) @ forward.transpose(1, 2) + centre + shift[:, None]
    inverse = torch.linalg.inv(forward)  # grid_sample asks, for each output pixel, where to read the input
    theta = torch.cat([inverse, -(inverse @ (shift * 2 / size)[..., None])], -1)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False), xy


def evaluate(model, data, stage, batch_size=128):
    model.eval()
    errs, heads = [], []
    with torch.no_grad():
        for i in range(0, len(data["image"]), batch_size):
            out = model(data["image"][i:i + batch_size].float())
            errs.append((out["coords"] - data["xy"][i:i + batch_size]).norm(dim=-1))
            if stage == 1:
                heads.append(torch.stack([torch.sigmoid(out["presence"]), out["off_axis"]], 1))
    err = torch.cat(errs)
    result = {}
    if stage == 1:
        err = err[data["in_frame"].bool()]
        heads = torch.cat(heads)
        present = data["presence"].bool()
        wide = data["off_axis"] > 30
        result = {"presence_acc": float(((heads[:, 0] > 0.5) == present).float().mean()),
                  "off_axis_mae": float((heads[present, 1] - data["off_axis"][present]).abs().mean()),
                  "wide_view_recall": float((heads[present & wide, 1] > 30).float().mean()),
                  "near_view_refused": float((heads[present & ~wide, 1] > 30).float().mean())}
    else:
        result = view_metrics(model, data)
    return {"median_px": float(err.median()), "p95_px": float(torch.quantile(err.flatten(), 0.95)), **result}


class Exported(nn.Module):
    """What ships: coordinates, spread and (stage 1) the image heads; no heatmaps."""

    def __init__(self, model: KeypointNet):
        super().__init__()
        self.model = model

    def forward(self, image):
        out = self.model(image)
        if self.model.image_heads:
            return out["coords"], out["spread"], torch.sigmoid(out["presence"]), torch.sigmoid(out["in_frame"]), out["off_axis"]
        # sole-up as a logit: the runtime compares it across crops, and its sigmoid saturates at 1.0 in float32
        outputs = (out["coords"], out["spread"], out["correction"], out["correction_sigma"], out["sole_up"],
                   torch.sigmoid(out["lateral"]))
        if self.model.perspective_head is not None:
            outputs += (out["perspective"], out["perspective_sigma"])
        if self.model.off_axis_head is not None:
            outputs += (out["off_axis"],)
        return outputs


def export(model: KeypointNet, stage: int, size: int, path: Path) -> None:
    model.eval()
    names = ["coords", "spread"] + (["presence", "in_frame", "off_axis"] if stage == 1
                                    else ["correction", "correction_sigma", "sole_up_logit", "lateral"])
    if model.perspective_head is not None:
        names += ["perspective", "perspective_sigma"]
    if model.off_axis_head is not None:
        names += ["off_axis"]
    torch.onnx.export(Exported(model), torch.zeros(1, 3, size, size), str(path), input_names=["image"],
                      output_names=names, dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                      opset_version=17, dynamo=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", type=int, choices=[1, 2], required=True)
    p.add_argument("--data", type=Path, nargs="+", required=True)
    p.add_argument("--val", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--minutes", type=float, default=0, help="stop after this long (0: no limit)")
    p.add_argument("--size", type=int, default=0, help="input size (default: 128 for both stages)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--heads-only", action="store_true",
                   help="stage 1: keep the keypoint network (from --init) and retrain only the image-level heads")
    p.add_argument("--jitter", type=float, default=0.0,
                   help="turn, scale and shift the training images by up to this much (radians, share, x 30 px); 0: off")
    p.add_argument("--head-weight", type=float, default=1.0, help="weight of stage 1's image-level heads")
    p.add_argument("--view-head", action="store_true",
                   help="stage 2: keep the keypoint network (from --init) and train only the view-correction head")
    p.add_argument("--perspective-head", action="store_true",
                   help="stage 2: keep the network and its view head (from --init) and train only the perspective "
                        "head, the view correction for points placed by hand")
    p.add_argument("--off-axis-head", action="store_true",
                   help="stage 2: keep the network and both correction heads (from --init) and train only the "
                        "off-axis head, how far the view is from side-on (give it a set rendered with --crop-max-off-axis 90)")
    p.add_argument("--init", type=Path, help="start from these weights (a .pt of the same stage)")
    p.add_argument("--out", type=Path, default=Path("models"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    size = args.size or 128
    train, val = load(args.data, args.stage, size), load([args.val], args.stage, size)
    model = build(args.stage, perspective_head=args.perspective_head or args.off_axis_head,
                  off_axis_head=args.off_axis_head)
    refit = ("view_head." if args.view_head else "perspective_head." if args.perspective_head
             else "off_axis_head." if args.off_axis_head else None)
    if args.init:
        state = torch.load(args.init)
        if refit:  # fitted from scratch below, so an older head (other outputs) need not fit
            state = {k: v for k, v in state.items() if not k.startswith(refit)}
        missing = model.load_state_dict(state, strict=refit is None).missing_keys
        assert all(k.startswith(refit) for k in missing), missing
    stride = model.out_stride
    if args.heads_only or refit:
        started = time.time()
        fit = (train_view_head if args.view_head else train_perspective_head if args.perspective_head
               else train_off_axis_head if args.off_axis_head else train_heads)
        fit(model, train, val, args)
        save(model, args, len(train["image"]), args.epochs, started)
        return
    n = len(train["image"])
    steps = args.epochs * (n // args.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    print(f"stage {args.stage}: {n} train, {len(val['image'])} val, {sum(p.numel() for p in model.parameters())} params")
    started, step = time.time(), 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        running = []
        for i in range(0, n - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            batch = augment({k: v[idx] for k, v in train.items()}, args.stage, gen, args.jitter)
            out = model(batch["image"])
            loss, logs = loss_fn(out, batch, args.stage, stride, args.head_weight)
            step = descend(opt, sched, loss, step, steps)
            running.append(logs["coord_px"])
            if args.minutes and time.time() - started > args.minutes * 60:
                break
        print(f"epoch {epoch}: train coord {np.mean(running):.2f} px, val {evaluate(model, val, args.stage)}, "
              f"{time.time() - started:.0f} s", flush=True)
        if args.minutes and time.time() - started > args.minutes * 60:
            print("time limit reached")
            break
    save(model, args, n, epoch + 1, started, val)


def save(model, args, n, epochs, started, val=None) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / f"stage{args.stage}.pt")
    export(model, args.stage, args.size or 128, args.out / f"foot_stage{args.stage}.onnx")
    val = val if val is not None else load([args.val], args.stage, args.size or 128)
    (args.out / f"stage{args.stage}_train.json").write_text(json.dumps({
        "stage": args.stage, "train_samples": n, "epochs_run": epochs, "seconds": round(time.time() - started),
        "val": evaluate(model, val, args.stage), "data": [str(d) for d in args.data], "args": {
            k: str(v) for k, v in vars(args).items()}}, indent=1))


def pooled_features(model: KeypointNet, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """What stage 1's image-level heads see: pooled deepest features and each heatmap's peak logit."""
    model.eval()
    captured = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            captured.append(model(images[i:i + batch_size].float())["head_inputs"])
    return torch.cat(captured)


def train_heads(model: KeypointNet, train, val, args) -> None:
    """Retrain presence / in-frame / view-angle heads on frozen features (minutes, not an hour)."""
    feats, val_feats = pooled_features(model, train["image"]), pooled_features(model, val["image"])
    print(f"features: {tuple(feats.shape)}", flush=True)
    head = model.head
    for layer in head:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-4)
    present, wide_w = train["presence"], 1 + 2 * (train["off_axis"] > 30).float()
    neg_w = torch.where(present > 0, 1.0, float((present > 0).sum() / (present == 0).sum().clamp(min=1)) / 2)
    for epoch in range(args.epochs):
        order = torch.randperm(len(feats))
        for i in range(0, len(feats), 256):
            idx = order[i:i + 256]
            h = head(feats[idx])
            p = present[idx]
            loss = (F.binary_cross_entropy_with_logits(h[:, 0], p, reduction="none") * neg_w[idx]).mean()
            loss = loss + (F.binary_cross_entropy_with_logits(h[:, 2:], train["in_frame"][idx], reduction="none")
                           .mean(1) * p).sum() / p.sum().clamp(min=1)
            off = torch.sigmoid(h[:, 1]) * 90.0
            loss = loss + (F.smooth_l1_loss(off / 10, train["off_axis"][idx] / 10, reduction="none")
                           * p * wide_w[idx]).sum() / p.sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            with torch.no_grad():
                hv = head(val_feats)
            off = torch.sigmoid(hv[:, 1]) * 90
            pv, wide = val["presence"].bool(), val["off_axis"] > 30
            print(f"heads epoch {epoch}: presence acc {((torch.sigmoid(hv[:, 0]) > 0.5) == pv).float().mean():.3f}, "
                  f"wide views refused {(off[pv & wide] > 30).float().mean():.2f}, "
                  f"near views refused {(off[pv & ~wide] > 30).float().mean():.3f}", flush=True)


def view_inputs(model: KeypointNet, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The view head's inputs for each crop, and the points the frozen keypoint network found in it."""
    model.eval()
    captured, points = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out = model(images[i:i + batch_size].float())
            captured.append(out["view_inputs"])
            points.append(out["coords"])
    return torch.cat(captured), torch.cat(points)


def crop_angle(xy: torch.Tensor) -> torch.Tensor:
    """The dorsiflexion angle the crop's forefoot points draw (FOREFOOT order; the sole is +y in every
    crop, so a heel far below stands in for the real one)."""
    xy = xy.double().numpy()
    heel = xy[:, 0] + [0.0, 1e4]
    return torch.from_numpy(np.asarray(dorsiflexion_deg(heel, xy[:, 0], xy[:, 1], xy[:, 2]))).float()


def view_target(data, points: torch.Tensor) -> torch.Tensor:
    """3D angle minus the angle of the points the network found: what the head must add to the drawn
    angle. That is mostly the photo's perspective, plus whatever part of the points' own error the
    features betray (v6; until v5 the target used the true 2D points, which leaves the points' own error
    out of the head's reach). Validation views near side-on, single crops, the whole angle's error: v5's
    head MAE 3.15 / median 2.25 / p95 8.54, v6's 3.03 / 2.04 / 7.51; heads refit with seeds 0-3 on
    cached features: MAE 2.98-3.06 / p95 7.6-7.8 with this target, 3.09-3.14 / 8.4-9.1 (seeds 0-2) with the old."""
    return data["angle"] - crop_angle(points)


def view_metrics(model: KeypointNet, data, near_deg: float = 20.0) -> dict[str, float]:
    """The whole angle's error (the found points' angle plus the correction, against the 3D angle) and
    the points' angle alone, for views near side-on; how often the sole-up output fires on upright
    crops and on crops flipped sole-up; how often the outer-side output fires on lateral and on medial views."""
    upright, points = view_inputs(model, data["image"])
    with torch.no_grad():
        head = model.view_head(upright)
        flipped = model.view_head(view_inputs(model, data["image"].flip(-2))[0])
    target, near, lateral = view_target(data, points), data["off_axis"] < near_deg, data["lateral"].bool()
    correction, sigma = degrees_and_sigma(head)
    corrected = (target - correction).abs()
    return {"points_angle_mae_near": float(target[near].abs().mean()),
            "corrected_mae_near": float(corrected[near].mean()),
            "corrected_median_near": float(corrected[near].median()),
            "corrected_p95_near": float(torch.quantile(corrected[near], 0.95)),
            "correction_sigma_median": float(sigma.median()),
            "correction_coverage_1.645sigma": float((corrected <= 1.645 * sigma).float().mean()),
            "sole_up_false_alarms": float((head[:, 2] > 0).float().mean()),
            "sole_up_recall": float((flipped[:, 2] > 0).float().mean()),
            "lateral_recall_near": float((head[near & lateral, 3] > 0).float().mean()),
            "lateral_false_alarms_near": float((head[near & ~lateral, 3] > 0).float().mean()),
            **perspective_metrics(model, upright, data, near), **off_axis_metrics(model, upright, data)}


def perspective_target(data) -> torch.Tensor:
    """3D angle minus the angle of the true 2D points: the perspective alone, for points placed by hand
    (the view head's target until v5)."""
    return data["angle"] - crop_angle(data["xy"])


def perspective_metrics(model: KeypointNet, features: torch.Tensor, data, near: torch.Tensor) -> dict[str, float]:
    """The perspective head's error when it corrects the true 2D points (views near side-on)."""
    if model.perspective_head is None:
        return {}
    with torch.no_grad():
        perspective, _ = degrees_and_sigma(model.perspective_head(features))
    corrected = (perspective_target(data) - perspective).abs()[near]
    return {"perspective_mae_near": float(corrected.mean()), "perspective_median_near": float(corrected.median()),
            "perspective_p95_near": float(torch.quantile(corrected, 0.95))}


def train_view_head(model: KeypointNet, train, val, args) -> None:
    """Fit the view head on frozen stage-2 features (minutes): a Gaussian likelihood for the correction
    (its value and sigma; view_target) on upright crops, and sole-up classification on the crops and their upside-down copies
    (a crop cut with the heel on the wrong side of the metatarsal axis shows the sole up), and outer-side
    (lateral view) classification on the upright crops."""
    (upright, points), flipped = view_inputs(model, train["image"]), view_inputs(model, train["image"].flip(-2))[0]
    feats = torch.cat([upright, flipped])
    target = torch.cat([view_target(train, points), torch.zeros(len(flipped))]) / 10.0
    sole_up = torch.cat([torch.zeros(len(upright)), torch.ones(len(flipped))])
    lateral = torch.cat([train["lateral"], torch.zeros(len(flipped))])
    print(f"view features: {tuple(feats.shape)}; val before: {view_metrics(model, val)}", flush=True)

    def loss_of(out, idx):
        up = 1 - sole_up[idx]
        nll = gaussian_nll(target[idx], out)
        outer = F.binary_cross_entropy_with_logits(out[:, 3], lateral[idx], reduction="none")
        loss = ((nll + LATERAL_WEIGHT * outer) * up).sum() / up.sum().clamp(min=1)  # upright crops only
        return loss + F.binary_cross_entropy_with_logits(out[:, 2], sole_up[idx])

    fit_head(model.view_head, feats, loss_of, args.epochs)
    print(f"view head after {args.epochs} epochs: val {view_metrics(model, val)}", flush=True)


def train_perspective_head(model: KeypointNet, train, val, args) -> None:
    """Fit the perspective head on frozen stage-2 features, the view head left as it is: the correction
    of the *true* 2D points. The view head's correction (since v6) also takes back the found points'
    expected error, which points placed by hand do not share."""
    fit_gaussian_head(model, model.perspective_head, perspective_target(train), train, val, args, "perspective head")


def train_off_axis_head(model: KeypointNet, train, val, args) -> None:
    """Fit the off-axis head on frozen stage-2 features, the other heads left as they are: how far the
    camera is from side-on. Stage 1 judges that from the whole photo at 128 px (validation MAE 10
    degrees), too coarsely to gate on; the forefoot crop at the photo's own resolution shows it better.
    Its training crops should include views far from side-on, which the other heads never see
    (dataset.py --crop-max-off-axis 90)."""
    fit_gaussian_head(model, model.off_axis_head, train["off_axis"], train, val, args, "off-axis head")


def fit_gaussian_head(model: KeypointNet, head: nn.Sequential, target_deg: torch.Tensor, train, val, args,
                      name: str) -> None:
    """Fit one (value, log-sigma) head on the frozen network's view features by Gaussian likelihood."""
    feats, _ = view_inputs(model, train["image"])
    target = target_deg / 10.0

    def loss_of(out, idx):
        return gaussian_nll(target[idx], out).mean()

    fit_head(head, feats, loss_of, args.epochs)
    print(f"{name} after {args.epochs} epochs: val {view_metrics(model, val)}", flush=True)


def off_axis_metrics(model: KeypointNet, features: torch.Tensor, data) -> dict[str, float]:
    """The off-axis head's error, and how often it would refuse views near side-on (under 20 degrees)
    and pass views 30 degrees off or more, at the gate's 30-degree limit."""
    if model.off_axis_head is None:
        return {}
    with torch.no_grad():
        estimate, _ = degrees_and_sigma(model.off_axis_head(features))
    truth = data["off_axis"]
    near, wide = truth < 20, truth >= 30
    return {"off_axis_mae": float((estimate - truth).abs().mean()),
            "off_axis_near_refused": float((estimate[near] > 30).float().mean()),
            "off_axis_wide_passed": float((estimate[wide] <= 30).float().mean()) if wide.any() else float("nan")}


def gaussian_nll(target: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Per-sample negative log-likelihood of ``target`` under a head's (value, log-sigma) columns."""
    log_sigma = out[:, 1].clamp(-3, 4)
    return 0.5 * ((target - out[:, 0]) / torch.exp(log_sigma)) ** 2 + log_sigma


def fit_head(head: nn.Sequential, feats: torch.Tensor, loss_of, epochs: int) -> None:
    """Fit a head from scratch on frozen features (standardised; AdamW, one-cycle, batches of 256),
    then fold the standardisation into its first layer, so that the export needs nothing extra.
    ``loss_of(output, batch indices)`` gives the batch's loss."""
    layers = [layer for layer in head if isinstance(layer, nn.Linear)]
    for layer in layers:
        layer.reset_parameters()
    head.train()  # view_inputs() left the whole model in eval mode; the head's dropout must work
    mean, std = feats.mean(0), feats.std(0).clamp(min=1e-3)
    z = (feats - mean) / std
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-3)
    steps = epochs * ((len(z) + 255) // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(z))
        for i in range(0, len(z), 256):
            idx = order[i:i + 256]
            step = descend(opt, sched, loss_of(head(z[idx]), idx), step, steps)
    head.eval()
    with torch.no_grad():
        first = layers[0]
        first.bias -= (first.weight * (mean / std)).sum(1)
        first.weight /= std


if __name__ == "__main__":
    main()
