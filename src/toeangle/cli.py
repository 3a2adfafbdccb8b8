"""Command line: translates arguments to the pipelines (photo, clip) and results to text or JSON.

Exit codes: 0 measured, 1 photo or clip unmeasurable (reasons printed), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from .decode import encode_png
from .errors import ToeangleError
from .overlay import draw_overlay
from .pipeline import Measurer
from .schema import (
    DEFAULT_PROTOCOL,
    PROTOCOL_CHOICES,
    Landmarks,
    MeasurementResult,
    MeasureOptions,
    Protocol,
    Routine,
    Verdict,
    VideoResult,
)


def _points(value: str) -> Landmarks:
    """--points takes inline JSON or the path of a JSON file."""
    text = Path(value).read_text(encoding="utf-8") if not value.lstrip().startswith("{") else value
    try:
        return Landmarks.model_validate_json(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"bad --points: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc


def format_result(result: MeasurementResult) -> str:
    lines = []
    if result.status != "ok":
        lines.append("Unmeasurable: " + "; ".join(result.reasons))
        lines += _posture_lines(result)
        return "\n".join(lines)
    m, v, r = result.measurement, result.verdict, result.routine
    spread = f" +/- {m.uncertainty_deg:.1f}" if m.uncertainty_deg is not None else ""
    lines.append(f"Hallux dorsiflexion: {m.angle_deg:.1f} deg{spread} (metatarsal axis vs {m.phalanx_point} axis)")
    if m.view_correction is not None:
        lines.append(f"  between the drawn points {m.angle_2d_deg:.1f} deg, corrected by {m.view_correction.degrees:+.1f} "
                     "for the camera's view of the foot")
    lines += [f"  note: {note}" for note in m.notes]
    lines += _verdict_lines(v, r, _posture_lines(result, advice=False))  # the verdict's summary carries the advice
    lines.append(f"Landmarks from: {result.detector}")
    return "\n".join(lines)


def _verdict_lines(v: Verdict, r: Routine | None, posture: list[str] | None = None) -> list[str]:
    """The verdict, the photo's posture lines under its summary, and the routine (none on a test mismatch)."""
    grade = f", {v.grade.system} grade {v.grade.grade}: {v.grade.description}" if v.grade else ""
    suggested = f" (suggested test: {v.suggested_protocol}, normal from {v.suggested_normal_min_deg:.0f} deg)" \
        if v.suggested_protocol else ""
    lines = [f"Verdict: {v.label}{grade}{suggested}", f"  {v.summary}", *(posture or [])]
    if r is not None:
        lines.append(f"Routine ({r.severity}):")
        lines += [f"  {i}. {e.name}: {e.dose}. {e.how}" for i, e in enumerate(r.exercises, 1)]
        lines.append(f"  {r.advice}")
        if r.see_clinician:
            lines.append("  Please see a clinician.")
        lines.append(f"  ({r.disclaimer})")
    return lines


def format_video_result(result: VideoResult) -> str:
    frames = result.frames
    measured = sum(f.status == "ok" for f in frames)
    lines = [f"Clip: {len(frames)} frames, {result.video.width}x{result.video.height}"
             + (f", {result.video.fps:g} fps" if result.video.fps else "")
             + (f", turned {result.video.rotation_deg} deg" if result.video.rotation_deg else ""),
             f"  measured {measured} of {len(frames)} frames ({result.frames_followed} followed from the previous "
             f"frame's crop, stage 2 only)"]
    if result.status != "ok":
        return "\n".join([*lines, "Unmeasurable: " + "; ".join(result.reasons)])
    mv = result.movement
    if mv.steps:
        spread = f" +/- {mv.spread_deg:.1f} (SD)" if mv.spread_deg is not None else ""
        lines.append(f"Push-off: {mv.angle_deg:.1f} deg{spread} over {len(mv.steps)} steps")
        lines += [f"  step at {s.time_s:.2f} s (frame {s.frame}): {s.angle_deg:.1f} deg" for s in mv.steps]
    else:
        spread = f" +/- {mv.uncertainty_deg:.1f}" if mv.uncertainty_deg is not None else ""
        lines.append(f"Peak: {mv.angle_deg:.1f} deg{spread} at {mv.key_time_s:.2f} s (frame {mv.key_frame})")
    lines += [f"  note: {note}" for note in mv.notes]
    lines += _verdict_lines(result.verdict, result.routine)
    lines.append(f"Landmarks from: {result.detector}")
    return "\n".join(lines)


def _posture_lines(result: MeasurementResult, advice: bool = True) -> list[str]:
    """What the photo shows and how sure, when its landmarks show a posture."""
    p = result.posture
    if p is None:
        return []
    toe = ", ".join(f"{state} {prob:.0%}" for state, prob in p.toe.items())
    lines = [f"Posture: {p.seen} (standing {p.standing:.0%}, heel raised {p.heel_raised:.0%}; toe {toe}); "
             f"{p.fit} with the {p.protocol} test ({p.tests[p.protocol]:.0%})"
             + (f"; suggested test: {p.suggested_protocol}" if p.suggested_protocol else "")]
    if advice and p.advice:
        lines.append(f"  {p.advice}")
    return lines


def cmd_measure(args: argparse.Namespace) -> int:
    options = MeasureOptions(protocol=args.protocol, side=args.side, other_foot_angle_deg=args.other_foot_angle,
                             pain=args.pain)
    outcome = Measurer().measure_photo(args.photo.read_bytes(), options, points=args.points)
    if args.overlay:
        args.overlay.write_bytes(encode_png(draw_overlay(outcome.image, outcome.result)))
    print(outcome.result.model_dump_json(indent=2) if args.json else format_result(outcome.result))
    return 0 if outcome.result.status == "ok" else 1


def cmd_video(args: argparse.Namespace) -> int:
    from .video.annotate import key_frame, write_annotated_clip
    from .video.pipeline import VideoMeasurer
    from .video.plot import plot_svg

    options = MeasureOptions(protocol=args.protocol, side=args.side, other_foot_angle_deg=args.other_foot_angle,
                             pain=args.pain)
    data = args.clip.read_bytes()
    measurer = VideoMeasurer()
    result = measurer.measure_clip(data, options, points=args.points)
    if args.plot:
        args.plot.write_text(plot_svg(result, measurer.measurer.rules.protocols[options.protocol].normal_min_deg))
    if args.key_frame:
        args.key_frame.write_bytes(encode_png(draw_overlay(*key_frame(data, result, measurer.limits))))
    if args.overlay_video:
        write_annotated_clip(data, result, measurer.limits, args.overlay_video)
    print(result.model_dump_json(indent=2) if args.json else format_video_result(result))
    return 0 if result.status == "ok" else 1


def cmd_serve(args: argparse.Namespace) -> int:
    """The web page and the API (the same app as the Docker image), until SIGINT/SIGTERM."""
    import uvicorn

    from .service import create_app
    from .service.logs import log_config
    from .settings import Settings

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v is not None}
    settings = Settings(**overrides)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=log_config(settings.log_level),
                access_log=False, server_header=False, timeout_graceful_shutdown=settings.request_timeout_s + 5)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toeangle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    measure = sub.add_parser("measure", help="measure one photo")
    measure.add_argument("photo", type=Path, help="JPEG, PNG, WebP or HEIC; side-on view of the inner foot")
    measure.add_argument("--protocol", choices=PROTOCOL_CHOICES, default=DEFAULT_PROTOCOL,
                         help="how the toe was bent when the photo was taken, or auto: read from the photo's "
                              f"posture (default: {DEFAULT_PROTOCOL})")
    measure.add_argument("--points", type=_points, help='landmarks as JSON (or a JSON file): {"heel": [x, y], ...}')
    measure.add_argument("--side", choices=["left", "right"])
    measure.add_argument("--other-foot-angle", type=float, help="the other foot's angle, for the side-to-side loss")
    measure.add_argument("--pain", action="store_true", help="the toe hurts in mid-range passive motion")
    measure.add_argument("--json", action="store_true", help="print the full result as JSON")
    measure.add_argument("--overlay", type=Path, help="write the annotated photo here (PNG)")
    measure.set_defaults(run=cmd_measure)

    video = sub.add_parser("video", help="measure a clip: the heel raise's peak, or the push-off of each step")
    video.add_argument("clip", type=Path, help="MP4, MOV, WebM or AVI (H.264, HEVC, VP9, ...); side-on view of the "
                                               "inner foot")
    video.add_argument("--protocol", choices=get_args(Protocol.__value__), default="heel_raise",
                       help="heel_raise (default): the peak while the heel is off the floor; walking, running: the "
                            "angle at push-off, per step")
    video.add_argument("--points", type=_points, help="the first frame's landmarks as JSON (or a JSON file); "
                                                      "followed from there")
    video.add_argument("--side", choices=["left", "right"])
    video.add_argument("--other-foot-angle", type=float, help="the other foot's angle, for the side-to-side loss")
    video.add_argument("--pain", action="store_true", help="the toe hurts in mid-range passive motion")
    video.add_argument("--json", action="store_true", help="print the full result (every frame) as JSON")
    video.add_argument("--plot", type=Path, help="write the curve here (SVG)")
    video.add_argument("--key-frame", type=Path, help="write the key frame with the overlay here (PNG)")
    video.add_argument("--overlay-video", type=Path, help="write the annotated clip here (MP4)")
    video.set_defaults(run=cmd_video)

    from .batch.cli import add_parser as add_batch_parser
    add_batch_parser(sub)

    serve = sub.add_parser("serve", help="serve the web page and the HTTP API (TOEANGLE_* settings apply)")
    serve.add_argument("--host", help="address to bind (default: TOEANGLE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: TOEANGLE_PORT, 8000)")
    serve.add_argument("--workers", type=int, help="inference worker processes (default: TOEANGLE_WORKERS, 2)")
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ToeangleError, ValidationError, OSError) as exc:
        print(f"toeangle: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
