"""Train the keypoint model from scratch as its recipes say: render the sets, run each step, export
both stages to ONNX, write the card, calibrate its uncertainty, and compare the validation figures
with the shipped ones (models/keypoints.json) within each recipe's tolerance.

    python training/run_recipe.py [--data data] [--models data/models] [--calibration-renders 2000]

`make train` runs this: about 5 hours on 2 cores (models/MODEL_CARD.md, "Training"). It exits
non-zero when a figure lands outside its tolerance. A rerun resumes: a set or a step whose files
exist in --data is not redone (delete them to redo it). Ship the result by copying --models over
models/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import torch
from card import SIGMA_SCALE_TOLERANCE, write_card
from dataset import render_set
from networks import build, export
from real_crops import build_real_set
from train import run_step

ROOT = Path(__file__).resolve().parents[1]
RECIPES = Path(__file__).resolve().parent / "recipes"
SETS = RECIPES / "sets.toml"
STAGE_RECIPES = [RECIPES / "stage1.toml", RECIPES / "stage2.toml"]
SHIPPED_CARD = ROOT / "models" / "keypoints.json"
STEP_KEYS = {"name", "init", "data", "fit", "epochs", "lr", "batch", "threads", "jitter", "turns", "photometric",
             "backbone_lr", "head_weight", "frozen", "warm"}


def read_toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def render_sets(names: set[str], sets: dict, data: Path, workers: int) -> None:
    """Render each named set that is not in ``data`` yet (a set of real photos' crops is cut instead)."""
    for name in sorted(names):
        out = data / f"{name}.npz"
        if not out.exists():
            spec = dict(sets[name])
            if spec.pop("real_photos", False):
                build_real_set(out, **spec)
                continue
            start, stop = spec.pop("seeds")
            render_set(range(start, stop), out, workers, **spec)


def heads_fitted(steps: list[dict], upto: int) -> frozenset[str]:
    """The Gaussian heads the network carries at step ``upto``: those fitted up to it."""
    return frozenset(step["fit"] for step in steps[:upto + 1] if "fit" in step)


def run_recipe(recipe: dict, data: Path, models: Path, overrides: dict | None = None) -> dict:
    """Run one stage's steps (``overrides``, e.g. fewer epochs, apply to every step), export the last
    one's weights to ``models`` with its record; returns the record."""
    stage, network, steps = recipe["stage"], recipe["network"], recipe["steps"]
    folder = data / f"stage{stage}"
    for i, step in enumerate(steps):
        unknown = set(step) - STEP_KEYS
        if unknown:
            raise SystemExit(f"stage {stage} step {step['name']}: unknown keys {sorted(unknown)}")
        out = folder / step["name"]
        if (out / f"stage{stage}_train.json").exists():
            print(f"stage {stage} step {step['name']}: done before, in {out}", flush=True)
            continue
        params = {k: v for k, v in step.items() if k not in ("name", "init", "data")} | (overrides or {})
        print(f"stage {stage} step {step['name']}: {params}", flush=True)
        run_step(stage, network, [data / f"{d}.npz" for d in step["data"]], data / f"{recipe['validation']}.npz",
                 out, init=folder / step["init"] / f"stage{stage}.pt" if "init" in step else None,
                 heads=heads_fitted(steps, i), weights=data / "weights", **params)
    last = folder / steps[-1]["name"]
    model = build(network, heads_fitted(steps, len(steps) - 1))
    model.load_state_dict(torch.load(last / f"stage{stage}.pt"))
    models.mkdir(parents=True, exist_ok=True)
    export(model, stage, models / f"foot_stage{stage}.onnx")
    record = (last / f"stage{stage}_train.json").read_text()
    (models / f"stage{stage}_train.json").write_text(record)
    return json.loads(record)


def calibrate(models: Path, renders: int) -> float:
    """The sigma scale that makes the uncertainty cover 90% of the errors on the calibration renders
    (bench/accuracy.py --calibrate, run on a card with scale 1 and no uncertainty limit)."""
    write_card(models, sigma_scale=1.0, max_uncertainty_deg=1000.0)
    env = {**os.environ, "TOEANGLE_MODELS_DIR": str(models.resolve())}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "accuracy.py"), "--calibrate", "--n", str(renders)],
                            env=env, check=True, capture_output=True, text=True)
    print(result.stdout, flush=True)
    return float(re.search(r"multiply sigma_scale by ([0-9.]+)", result.stdout).group(1))


def compare(recipes: list[dict], card: dict, shipped: dict) -> list[str]:
    """Print each toleranced figure beside the shipped one; returns those outside their tolerance."""
    misses = []
    rows = [(f"stage{r['stage']}", key, card[f"stage{r['stage']}"]["training"]["val"][key],
             shipped[f"stage{r['stage']}"]["training"]["val"][key], tol)
            for r in recipes for key, tol in r["tolerance"].items()]
    scale, shipped_scale = card["uncertainty"]["sigma_scale"], shipped["uncertainty"]["sigma_scale"]
    rows.append(("card", "sigma_scale", scale, shipped_scale, SIGMA_SCALE_TOLERANCE * shipped_scale))
    for where, key, new, old, tol in rows:
        ok = abs(new - old) <= tol
        print(f"{where:7s} {key:24s} {new:9.4f}  shipped {old:9.4f}  +/- {tol:<6g} {'ok' if ok else 'OUTSIDE'}")
        if not ok:
            misses.append(f"{where} {key}")
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="rendered sets and each step's weights")
    parser.add_argument("--models", type=Path, default=ROOT / "data" / "models", help="where the result goes")
    parser.add_argument("--calibration-renders", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="render processes")
    args = parser.parse_args()
    shipped = json.loads(SHIPPED_CARD.read_text())
    sets, recipes = read_toml(SETS), [read_toml(path) for path in STAGE_RECIPES]
    render_sets({d for r in recipes for step in r["steps"] for d in step["data"]} | {r["validation"] for r in recipes},
                sets, args.data, args.workers)
    for recipe in recipes:
        run_recipe(recipe, args.data, args.models)
    card = write_card(args.models, calibrate(args.models, args.calibration_renders))
    misses = compare(recipes, card, shipped)
    if misses:
        raise SystemExit(f"outside the recipes' tolerance of the shipped figures: {', '.join(misses)}")
    print(f"within tolerance of the shipped figures: {args.models}")


if __name__ == "__main__":
    main()
