"""Rebuild trainable torch weights from a shipped ONNX stage, for training on top of it.

    python training/recover.py --stage 2 --onnx models/foot_stage2.onnx --out data/stage2.pt

The exporter folds each BatchNorm into the convolution before it. Loading the folded weights
into the convolution and turning the BatchNorm into "add the folded bias" (scale 1, mean 0,
variance 1 - eps) gives a network that computes exactly what the ONNX file computes in eval
mode. That is what a frozen backbone needs (``train.py --view-head``): the shipped v2 stage 2 is
the v1 network, recovered this way, plus its view head. (Fine-tuning the whole network from
these weights would be a different matter: training-mode BatchNorm renormalises.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from train import build


def recover(stage: int, onnx_path: Path) -> dict[str, torch.Tensor]:
    graph = onnx.load(str(onnx_path)).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    model = build(stage)
    state = model.state_dict()
    loaded = set()
    for name, value in weights.items():  # parameters the exporter kept by name (1x1 heatmap conv, heads)
        # the view head is not carried over: train.py --view-head refits it, and its outputs may have changed
        if name.startswith("model.") and name[6:] in state and not name.startswith("model.view_head."):
            state[name[6:]] = value
            loaded.add(name[6:])
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        module = node.name.split("/")[-2]  # "/model/down.0/down.0.1/down.0.1.0/Conv" -> "down.0.1.0"
        if f"{module}.weight" in loaded:
            continue
        weight, bias = (weights[name] for name in node.input[1:3])
        norm = module[:-1] + "1"  # conv(...) is Sequential(Conv2d, BatchNorm2d, ReLU)
        eps = model.get_submodule(norm).eps
        state[f"{module}.weight"] = weight
        state[f"{norm}.weight"] = torch.ones_like(bias)
        state[f"{norm}.bias"] = bias
        state[f"{norm}.running_mean"] = torch.zeros_like(bias)
        state[f"{norm}.running_var"] = torch.full_like(bias, 1 - eps)
        loaded |= {f"{module}.weight", f"{norm}.weight", f"{norm}.bias", f"{norm}.running_mean", f"{norm}.running_var"}
    missing = [k for k in state if k not in loaded and not k.endswith("num_batches_tracked")
               and not k.startswith("view_head.")]
    if missing:
        raise SystemExit(f"{onnx_path} does not hold these weights: {missing[:5]}")
    model.load_state_dict(state)
    return model.state_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, choices=[1, 2], required=True)
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    state = recover(args.stage, args.onnx)
    model = build(args.stage).eval()
    model.load_state_dict(state)
    import onnxruntime as ort

    x = np.random.default_rng(0).integers(0, 255, (2, 3, 128, 128)).astype(np.float32)
    expected = ort.InferenceSession(str(args.onnx)).run(None, {"image": x})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x))["coords"].numpy()
    print(f"max coordinate difference vs {args.onnx.name}: {np.abs(got - expected).max():.2e} px")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)


if __name__ == "__main__":
    main()
