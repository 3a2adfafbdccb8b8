"""How far the team's hand-annotation rule lands from the contract: the rule applied blind to renders.

    .venv/bin/python bench/real/annotation_check.py                 # the rule against the truth
    .venv/bin/python bench/real/annotation_check.py --model         # and the product on the same renders
    .venv/bin/python bench/real/annotation_check.py --render DIR    # the photos again, to annotate them anew

bench/real.py scores the model against hand points on real photos, so a bias of the annotation rule
(README.md here, ../shared/find/ANNOTATING.md) reads as a model error there. To measure it, the rule
was applied, blind, to evaluation renders (bench/evalrender/) whose true points are the contract's own.
`blind_renders.json` holds, per seed, the hand points and the truth the renderer gave with the photo
(the 2D projected landmarks and the 3D angle). Prints the annotated 2D angle minus the true 2D angle
(the contract's sign rule) and each hand point's offset from the true one in the true foot's frame.
The photos are rendered again from their seeds when needed (a few seconds each), after checking that
the renderer still gives the stored truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1] / "training")]

from real import points_angle, predicted_points, signed_errors_pct, spread  # noqa: E402
from realset import LANDMARKS, points_of  # noqa: E402

DATA = HERE / "blind_renders.json"
GROUPS = (("all", lambda r: True), ("toe resting", lambda r: r["toe"] == "resting"),
          ("toe lifted", lambda r: r["toe"] == "lifted"))


def photos(rows: list[dict]) -> Iterator[tuple[dict, bytes]]:
    """Each row with its photo, as the annotator saw it; stops if the renderer no longer gives the stored truth."""
    from evalrender import EvalRenderer

    renderer = EvalRenderer()
    for row in rows:
        photo = renderer.photo(row["seed"])
        drift = max(np.hypot(*np.subtract(photo.truth["landmarks"][n], row["truth"]["landmarks"][n])) for n in LANDMARKS)
        if drift > 0.05:
            raise SystemExit(f"seed {row['seed']}: the renderer's truth moved by {drift:.2f} px; annotate again")
        yield row, photo.jpeg


def angles(rows: list[dict]) -> None:
    """Per toe posture: the hand points' 2D angle against the true points' 2D angle (and the 3D truth)."""
    for title, keep in GROUPS:
        sub = [r for r in rows if keep(r)]
        hand = np.array([points_angle(points_of(r["points"])) for r in sub])
        true2d = np.array([points_angle(points_of(r["truth"]["landmarks"])) for r in sub])
        true3d = np.array([r["truth"]["angle_deg"] for r in sub])
        print(f"\n## {title}: medians annotated {np.median(hand):.1f}, true 2D {np.median(true2d):.1f}, "
              f"true 3D {np.median(true3d):.1f} deg; correlation annotated/true 2D {np.corrcoef(hand, true2d)[0, 1]:.2f}")
        means = np.random.default_rng(0).choice(hand - true2d, (10000, len(sub))).mean(1)
        print(f"annotated minus true 2D angle: {spread(list(hand - true2d), ' deg')}, 90% bootstrap interval of the "
              f"mean {np.percentile(means, 5):+.1f} to {np.percentile(means, 95):+.1f}; "
              f"|difference| {spread(list(abs(hand - true2d)), ' deg')}")
        print(f"true 2D minus true 3D angle (the view's own share): {spread(list(true2d - true3d), ' deg')}")


def offsets(rows: list[dict]) -> None:
    print("\n## each hand point minus the true one, in the true foot's frame, % of its length "
          "(along: towards the toe tip; up: towards the dorsum)")
    signed = [signed_errors_pct(points_of(r["points"]), points_of(r["truth"]["landmarks"])) for r in rows]
    for name in LANDMARKS:
        xy = np.array([s[name] for s in signed])
        print(f"  {name:17s} along {spread(list(xy[:, 0]), '%')}\n  {'':17s} up    {spread(list(xy[:, 1]), '%')}")


def model(rows: list[dict]) -> None:
    """The product's points on the same renders: its own angle against the truth and against the hand points."""
    from toeangle.pipeline import Measurer
    from toeangle.schema import MeasureOptions
    from toeangle.settings import get_settings

    settings = get_settings()
    measurer = Measurer(settings)
    read = []
    for row, jpeg in photos(rows):
        points = predicted_points(measurer.measure_photo(jpeg, MeasureOptions()).result)
        if (angle := points_angle(points)) is not None:
            read.append((row, angle))
    print(f"\n## the product ({settings.detector}) on the same renders: its points' own angle (measured or refused), "
          f"{len(read)} of {len(rows)}")
    for title, keep in GROUPS:
        sub = [(r, a) for r, a in read if keep(r)]
        true2d = [points_angle(points_of(r["truth"]["landmarks"])) for r, _ in sub]
        hand = [points_angle(points_of(r["points"])) for r, _ in sub]
        print(f"  {title:11s} minus true 2D: {spread([a - t for (_, a), t in zip(sub, true2d)], ' deg')}\n"
              f"  {'':11s} minus annotated: {spread([a - h for (_, a), h in zip(sub, hand)], ' deg')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="store_true", help="also run the product on the renders")
    parser.add_argument("--render", type=Path, metavar="DIR", help="only write the photos here")
    args = parser.parse_args()
    rows = json.loads(DATA.read_text())
    if args.render:
        args.render.mkdir(parents=True, exist_ok=True)
        for row, jpeg in photos(rows):
            (args.render / f"{row['seed']}.jpg").write_bytes(jpeg)
        print(f"{len(rows)} photos in {args.render}")
        return
    print(f"# the annotation rule applied blind to {len(rows)} evaluation renders: inner side, under 15 deg off "
          f"side-on, standing; toe {sum(r['toe'] == 'resting' for r in rows)} resting, "
          f"{sum(r['toe'] == 'lifted' for r in rows)} lifted")
    angles(rows)
    offsets(rows)
    if args.model:
        model(rows)


if __name__ == "__main__":
    main()
