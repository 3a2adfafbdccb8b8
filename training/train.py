"""Training steps for the keypoint networks (training/networks.py): the loop, the losses, the head
fits on frozen features, and the validation figures. training/run_recipe.py runs them as the
recipes in training/recipes/ say; nothing here is run any other way.

Stage 1 sees the whole (letterboxed) photo and also says whether there is a foot, which
landmarks are in frame, and how far the view is from side-on. Stage 2 sees the rotation-normalised
forefoot crop and places the four points that set the angle; its Gaussian heads (view correction,
perspective, off-axis) are fitted afterwards on its frozen features.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from networks import KeypointNet, build, degrees_and_sigma, imagenet_weights

from toeangle.detectors.contract import DEGREES_PER_UNIT, LOG_SIGMA_RANGE, STAGES
from toeangle.detectors.keypoint import undo_dihedral
from toeangle.geometry import dorsiflexion_deg


def gaussian_targets(xy: torch.Tensor, h: int, w: int, stride: int, sigma_cells: float = 1.0) -> torch.Tensor:
    ys = (torch.arange(h) + 0.5) * stride - 0.5
    xs = (torch.arange(w) + 0.5) * stride - 0.5
    dx = (xs[None, None, None, :] - xy[..., 0, None, None]) / stride
    dy = (ys[None, None, :, None] - xy[..., 1, None, None]) / stride
    g = torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma_cells ** 2))
    return g / g.sum((2, 3), keepdim=True).clamp(min=1e-8)



LATERAL_WEIGHT = 0.3
"""The outer-side loss's weight in the view head. Measured with v3's head on the validation views near side-on
(one run each): weight 1 gave correction MAE 3.21 / p95 8.64 and 87% of lateral views caught,
0.3 gave 3.02 / 8.09 and 85%, no outer-side output 3.19 / 9.12 (v2's head: 2.99 / 8.2)."""



ARRAYS = {1: ("stage1", "xy1"), 2: ("stage2", "xy2")}
"""Each stage's images and points in a rendered set (dataset.py)."""
OTHER_STAGE = {1: ("stage2", "xy2"), 2: ("stage1", "xy1", "in_frame", "presence")}
"""What each stage leaves unread in a rendered set."""


def load(paths: list[Path], stage: int) -> dict[str, torch.Tensor]:
    """Rendered samples, resized to the stage's input size (pixel centres map through the scale)."""
    image_key, xy_key = ARRAYS[stage]
    size = STAGES[stage].input_size
    parts = []
    for path in paths:
        with np.load(path) as stored:  # only this stage's arrays: eleven sets of both stages do not fit twice in RAM
            data = {k: stored[k] for k in stored.files if k not in OTHER_STAGE[stage]}
        keep = np.ones(len(data["seeds"]), bool) if stage == 1 else data["stage2_ok"].astype(bool)
        data = {k: v[keep] for k, v in data.items()}
        images, xy = data[image_key], data[xy_key]
        if images.shape[1] != size:  # sets rendered at another crop size
            scale = size / images.shape[1]
            data[image_key] = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])
            data[xy_key] = (xy + 0.5) * scale - 0.5
        parts.append(data)
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out = {"image": torch.from_numpy(data[image_key]).permute(0, 3, 1, 2).contiguous(),
           "xy": torch.from_numpy(data[xy_key]).float(),
           "angle": torch.from_numpy(data["angle"]).float(),
           "off_axis": torch.from_numpy(data["off_axis"]).float(),
           "lateral": torch.from_numpy(data["lateral"]).float()}
    if stage == 1:
        out.update({k: torch.from_numpy(data[k]).float() for k in ("in_frame", "presence", "standing", "heel_raised")},
                   toe_state=torch.from_numpy(data["toe_state"]).long())
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
        heads = heads + (F.binary_cross_entropy_with_logits(out["outer_side"], batch["lateral"], reduction="none")
                         * present).sum() / present.sum().clamp(min=1)
        loss = loss + head_weight * (heads + posture_loss(out, batch))
    return loss, logs


def posture_loss(out, batch) -> torch.Tensor:
    """Standing and heel raised (binary) and the toe's state (three classes, unlabelled ones left out),
    on photos with a foot."""
    present = batch["presence"]
    n = present.sum().clamp(min=1)
    loss = sum((F.binary_cross_entropy_with_logits(out[k], batch[k], reduction="none") * present).sum() / n
               for k in ("standing", "heel_raised"))
    toe = batch["toe_state"].masked_fill(present == 0, -1)
    if (toe >= 0).any():
        loss = loss + F.cross_entropy(out["toe_state"], toe, ignore_index=-1)
    return loss


def descend(opt, sched, loss: torch.Tensor, step: int, steps: int) -> int:
    """One optimiser step on a one-cycle schedule of ``steps`` (which must not be stepped past its end)."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step < steps - 1:
        sched.step()
    return step + 1


def augment(batch, stage: int, gen: torch.Generator, jitter: float = 0.0, turns: bool = False,
            photometric: float = 0.0):
    img, xy = batch["image"].float(), batch["xy"].clone()
    if stage == 1:  # a mirrored photo is a valid photo of the other foot
        flip = torch.rand(len(img), generator=gen) < 0.5
        img[flip] = img[flip].flip(-1)
        xy[flip, :, 0] = img.shape[-1] - 1 - xy[flip, :, 0]
    if turns:
        img, xy = quarter_turns(img, xy, gen)
    if jitter:
        img, xy = similarity_jitter(img, xy, jitter, gen)
    if photometric:
        img = photometric_noise(img, gen, photometric)
    else:
        gain = 1 + 0.15 * (torch.rand(len(img), 3, 1, 1, generator=gen) - 0.5)
        img = (img * gain).clamp(0, 255)
    return {**batch, "image": img, "xy": xy}


def quarter_turns(img: torch.Tensor, xy: torch.Tensor, gen: torch.Generator):
    """Turn each square image by a random multiple of 90 degrees: phones store photos in any of the four
    (stage 1 reads all of them and their mirror images at run time, and must read each alike)."""
    size = img.shape[-1]
    k = torch.randint(0, 4, (len(img),), generator=gen)
    for turn in range(1, 4):
        sel = k == turn
        if sel.any():
            img[sel] = torch.rot90(img[sel], turn, (2, 3))
            # the runtime's own mapping (its image turned back by the rest of a full turn), so both agree
            xy[sel] = torch.from_numpy(undo_dihedral(xy[sel].numpy(), 4 - turn, size)).to(xy.dtype)
    return img, xy


def photometric_noise(img: torch.Tensor, gen: torch.Generator, strength: float) -> torch.Tensor:
    """What differs between phone photos and renders in colour alone, scaled by ``strength`` (1: the v9
    amounts): saturation, white balance, contrast, brightness, gamma, defocus blur, sensor noise, and
    sometimes no colour at all."""
    b = len(img)

    def uniform(*shape):
        return torch.rand(*shape, generator=gen) - 0.5

    x = img / 255.0
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * (1 + 1.2 * strength * uniform(b, 1, 1, 1))
    x = x * (1 + 0.3 * strength * uniform(b, 3, 1, 1))
    x = (x - 0.5) * (1 + 0.8 * strength * uniform(b, 1, 1, 1)) + 0.5 + 0.4 * strength * uniform(b, 1, 1, 1)
    x = x.clamp(1e-4, 1) ** torch.exp(0.8 * strength * uniform(b, 1, 1, 1))
    blurred = torch.rand(b, generator=gen) < 0.3 * strength
    if blurred.any():
        sigma = 0.5 + 1.2 * torch.rand(1, generator=gen).item()
        kernel = torch.exp(-torch.arange(-3, 4).float() ** 2 / (2 * sigma ** 2))
        kernel = (kernel / kernel.sum()).repeat(3, 1, 1, 1)
        xb = F.conv2d(F.pad(x[blurred], (3, 3, 0, 0), mode="reflect"), kernel.view(3, 1, 1, 7), groups=3)
        x[blurred] = F.conv2d(F.pad(xb, (0, 0, 3, 3), mode="reflect"), kernel.view(3, 1, 7, 1), groups=3)
    noise = 0.06 * strength * torch.rand(b, 1, 1, 1, generator=gen) * (torch.rand(b, 1, 1, 1, generator=gen) < 0.5)
    x = x + torch.randn(x.shape, generator=gen) * noise
    grey_only = torch.rand(b, generator=gen) < 0.08 * strength
    x[grey_only] = x[grey_only].mean(1, keepdim=True).expand(-1, 3, -1, -1)
    return x.clamp(0, 1) * 255


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
                heads.append(torch.cat([torch.stack([torch.sigmoid(out["presence"]), out["off_axis"], out["standing"],
                                                     out["heel_raised"], out["outer_side"]], 1), out["toe_state"]], 1))
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
                  "near_view_refused": float((heads[present & ~wide, 1] > 30).float().mean()),
                  "standing_acc": float(((heads[present, 2] > 0) == data["standing"][present].bool()).float().mean()),
                  "heel_raised_acc": float(((heads[present, 3] > 0) == data["heel_raised"][present].bool()).float().mean())}
        toe = data["toe_state"]
        labelled = present & (toe >= 0)
        result["toe_state_acc"] = float((heads[labelled, 5:].argmax(1) == toe[labelled]).float().mean())
        lateral, near = data["lateral"].bool(), present & ~wide
        result["outer_side_recall_near"] = float((heads[near & lateral, 4] > 0).float().mean())
        result["outer_side_false_alarms_near"] = float((heads[near & ~lateral, 4] > 0).float().mean())
    else:
        result = view_metrics(model, data)
    return {"median_px": float(err.median()), "p95_px": float(torch.quantile(err.flatten(), 0.95)), **result}



def run_step(stage: int, network: str, data: list[Path], val: Path, out: Path, *, epochs: int, lr: float = 3e-3,
             batch: int = 64, threads: int = 2, jitter: float = 0.0, turns: bool = False, photometric: float = 0.0,
             backbone_lr: float = 1.0, head_weight: float = 1.0, init: Path | None = None, fit: str | None = None,
             frozen: str | None = None, warm: bool = False, heads: frozenset[str] = frozenset(),
             weights: Path | None = None) -> KeypointNet:
    """One recipe step: train the network (``fit`` None) or fit one Gaussian head on its frozen features
    (``fit`` "view", "perspective" or "off_axis": from scratch, or with ``warm`` from the head as ``init`` has it, at
    ``lr``), from ``init``'s weights, or else from the backbone's ImageNet weights where it has them (kept in
    ``weights``); ``frozen`` "encoder" trains the rest of the network only (``freeze_encoder``); writes
    ``out/stage<N>.pt`` and ``out/stage<N>_train.json`` (validation figures and the step's parameters)."""
    params = dict(network=network, data=[str(d) for d in data], val=str(val), epochs=epochs, lr=lr, batch=batch,
                  threads=threads, jitter=jitter, turns=turns, photometric=photometric, backbone_lr=backbone_lr,
                  head_weight=head_weight, init=str(init) if init else None, fit=fit, frozen=frozen, warm=warm,
                  heads=sorted(heads))
    if frozen not in (None, "encoder"):
        raise ValueError(f"frozen: only 'encoder' can be frozen, not {frozen!r}")
    if warm and not fit:
        raise ValueError("warm: only a head fit (fit = ...) can start from the head it has")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    train, val_data = load(data, stage), load([val], stage)
    model = build(network, heads)
    if init:
        state = torch.load(init)
        if fit and not warm:  # fitted from scratch below, so an older head (other outputs) need not fit
            state = {k: v for k, v in state.items() if not k.startswith(f"{fit}_head.")}
        missing = model.load_state_dict(state, strict=fit is None or warm).missing_keys
        assert all(k.startswith(f"{fit}_head.") for k in missing), missing
    elif weights is not None:
        imagenet_weights(model, weights)
    kept = freeze_encoder(model) if frozen else []
    started = time.time()
    if fit:
        HEAD_FITS[fit](model, train, epochs, lr if warm else None)
    else:
        augmentation = dict(jitter=jitter, turns=turns, photometric=photometric)
        train_network(model, train, val_data, stage, gen, epochs, lr, backbone_lr, batch, augmentation, head_weight,
                      kept)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / f"stage{stage}.pt")
    seconds, figures = round(time.time() - started), evaluate(model, val_data, stage)
    print(f"stage {stage} after the step, {seconds} s: val {figures}", flush=True)
    (out / f"stage{stage}_train.json").write_text(json.dumps({
        "stage": stage, "train_samples": len(train["image"]), "epochs_run": epochs, "seconds": seconds,
        "val": figures, "params": params}, indent=1) + "\n")
    return model


def freeze_encoder(model: KeypointNet) -> list[nn.Module]:
    """Keep the encoder as it is (weights and BatchNorm statistics): the view heads read its features, so a
    step that teaches the decoder alone leaves them valid without fitting them again. Returns the frozen
    modules, which train_network keeps in eval mode."""
    kept = model.encoder_modules()
    for module in kept:
        module.requires_grad_(False)
    return kept


def train_network(model: KeypointNet, train, val, stage: int, gen: torch.Generator, epochs: int, lr: float,
                  backbone_lr: float, batch: int, augmentation: dict, head_weight: float,
                  kept: tuple[nn.Module, ...] | list[nn.Module] = ()) -> None:
    """The network (but the ``kept`` modules, frozen), by AdamW on a one-cycle schedule, its images augmented
    (``augment``'s options); a pretrained backbone learns at ``backbone_lr`` times the rate of the rest."""
    n = len(train["image"])
    steps = epochs * (n // batch)
    backbone = {id(p) for p in model.backbone.parameters()} if hasattr(model, "backbone") else set()
    learning = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in learning if id(p) in backbone], "lr": lr * backbone_lr},
              {"params": [p for p in learning if id(p) not in backbone], "lr": lr}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps,
                                                pct_start=0.1)
    print(f"stage {stage}: {n} train, {len(val['image'])} val, {sum(p.numel() for p in model.parameters())} params")
    started, step = time.time(), 0
    for epoch in range(epochs):
        model.train()
        for module in kept:
            module.eval()
        order = torch.randperm(n, generator=gen)
        running = []
        for i in range(0, n - batch + 1, batch):
            idx = order[i:i + batch]
            images = augment({k: v[idx] for k, v in train.items()}, stage, gen, **augmentation)
            out = model(images["image"])
            loss, logs = loss_fn(out, images, stage, model.out_stride, head_weight)
            step = descend(opt, sched, loss, step, steps)
            running.append(logs["coord_px"])
        figures = evaluate(model, val, stage) if epoch < epochs - 1 else "after the step"  # (run_step's)
        print(f"epoch {epoch}: train coord {np.mean(running):.2f} px, val {figures}, {time.time() - started:.0f} s",
              flush=True)


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
    crop, so a heel far off the points' own axis on its +y side stands in for the real one: only its
    side counts, and an untrained network's axis may run straight down the crop)."""
    xy = xy.double().numpy()
    axis = xy[:, 1] - xy[:, 0]
    plantar = np.stack([-axis[:, 1], axis[:, 0]], 1) * np.where(axis[:, 0] >= 0, 1.0, -1.0)[:, None]
    heel = xy[:, 0] + 1e4 * plantar / np.hypot(*axis.T).clip(1e-9)[:, None]
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


def train_view_head(model: KeypointNet, train, epochs: int, warm_lr: float | None = None) -> None:
    """Fit the view head on frozen stage-2 features (minutes): a Gaussian likelihood for the correction
    (its value and sigma; view_target) on upright crops, and sole-up classification on the crops and their upside-down copies
    (a crop cut with the heel on the wrong side of the metatarsal axis shows the sole up), and outer-side
    (lateral view) classification on the upright crops. A crop with no 3D angle (a real photo's:
    real_crops.py) teaches the sole-up and outer-side outputs only. ``warm_lr``: fit_head's."""
    (upright, points), flipped = view_inputs(model, train["image"]), view_inputs(model, train["image"].flip(-2))[0]
    feats = torch.cat([upright, flipped])
    target = torch.cat([view_target(train, points), torch.zeros(len(flipped))]) / DEGREES_PER_UNIT
    angled = ~target.isnan()
    target = target.nan_to_num()
    sole_up = torch.cat([torch.zeros(len(upright)), torch.ones(len(flipped))])
    lateral = torch.cat([train["lateral"], torch.zeros(len(flipped))])
    print(f"view features: {tuple(feats.shape)}", flush=True)

    def loss_of(out, idx):
        up = 1 - sole_up[idx]
        nll = gaussian_nll(target[idx], out) * angled[idx]
        outer = F.binary_cross_entropy_with_logits(out[:, 3], lateral[idx], reduction="none")
        loss = ((nll + LATERAL_WEIGHT * outer) * up).sum() / up.sum().clamp(min=1)  # upright crops only
        return loss + F.binary_cross_entropy_with_logits(out[:, 2], sole_up[idx])

    fit_head(model.view_head, feats, loss_of, epochs, warm_lr)


def train_perspective_head(model: KeypointNet, train, epochs: int, warm_lr: float | None = None) -> None:
    """Fit the perspective head on frozen stage-2 features, the view head left as it is: the correction
    of the *true* 2D points. The view head's correction (since v6) also takes back the found points'
    expected error, which points placed by hand do not share."""
    fit_gaussian_head(model.perspective_head, model, perspective_target(train), train, epochs, warm_lr)


def train_off_axis_head(model: KeypointNet, train, epochs: int, warm_lr: float | None = None) -> None:
    """Fit the off-axis head on frozen stage-2 features, the other heads left as they are: how far the
    camera is from side-on. Stage 1 judges that from the whole photo at 128 px (validation MAE 10
    degrees), too coarsely to gate on; the forefoot crop at the photo's own resolution shows it better.
    Its training crops should include views far from side-on, which the other heads never see
    (dataset.py --crop-max-off-axis 90)."""
    fit_gaussian_head(model.off_axis_head, model, train["off_axis"], train, epochs, warm_lr)


def fit_gaussian_head(head: nn.Sequential, model: KeypointNet, target_deg: torch.Tensor, train, epochs: int,
                      warm_lr: float | None = None) -> None:
    """Fit one (value, log-sigma) head on the frozen network's view features by Gaussian likelihood (crops
    without the target, a real photo's, left out)."""
    known = ~target_deg.isnan()
    feats, _ = view_inputs(model, train["image"] if known.all() else train["image"][known])  # no copy of eleven sets
    target = target_deg[known] / DEGREES_PER_UNIT

    def loss_of(out, idx):
        return gaussian_nll(target[idx], out).mean()

    fit_head(head, feats, loss_of, epochs, warm_lr)


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
    log_sigma = out[:, 1].clamp(*LOG_SIGMA_RANGE)
    return 0.5 * ((target - out[:, 0]) / torch.exp(log_sigma)) ** 2 + log_sigma


def fit_head(head: nn.Sequential, feats: torch.Tensor, loss_of, epochs: int, warm_lr: float | None = None) -> None:
    """Fit a head on frozen features (standardised; AdamW, one-cycle, batches of 256), then fold the
    standardisation into its first layer, so that the export needs nothing extra. From scratch at 2e-3, or
    with ``warm_lr`` on from the head as it is (its first layer unfolded onto this data's standardisation,
    which leaves its outputs as they were): new data teaches it without the sets it was fitted on.
    ``loss_of(output, batch indices)`` gives the batch's loss."""
    layers = [layer for layer in head if isinstance(layer, nn.Linear)]
    first = layers[0]
    mean, std = feats.mean(0), feats.std(0).clamp(min=1e-3)
    if warm_lr is None:
        for layer in layers:
            layer.reset_parameters()
    else:
        with torch.no_grad():
            first.bias += first.weight @ mean
            first.weight *= std
    head.train()  # view_inputs() left the whole model in eval mode; the head's dropout must work
    z = (feats - mean) / std
    lr = warm_lr or 2e-3
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3)
    steps = epochs * ((len(z) + 255) // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(z))
        for i in range(0, len(z), 256):
            idx = order[i:i + 256]
            step = descend(opt, sched, loss_of(head(z[idx]), idx), step, steps)
    head.eval()
    with torch.no_grad():
        first.bias -= (first.weight * (mean / std)).sum(1)
        first.weight /= std


HEAD_FITS = {"view": train_view_head, "perspective": train_perspective_head, "off_axis": train_off_axis_head}
