"""Speed of a clip through the product, against decoding the same clip alone.

    python bench/video.py [--clip PATH] [--frames 90] [--long-side 1920] [--fps 30]

Without --clip a heel raise is rendered (training/clips.py: FIND foot, camera shake, motion blur) at
--long-side x 9/16 and written with OpenCV's own encoder (MPEG-4 part 2: OpenCV's wheels carry no H.264
encoder); rendering is not timed. --clip takes any clip, e.g. an H.264 one. Prints, warm: decoding
alone (every frame, upright, as the product reads it), the product end to end (decode, tracked
landmarks, curve, movement), the ratio of the two, how many frames were followed (stage 2 only), and
the same clip with every frame searched (stage 1 and 2) to show what tracking buys. Issue 21's target:
at least 30 frames/s with tracking, within 3x of decoding alone, on 1080p 30 fps H.264 with 2 cores.
Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))

from toeangle.schema import MeasureOptions  # noqa: E402
from toeangle.video.clip import Clip  # noqa: E402
from toeangle.video.pipeline import VideoMeasurer  # noqa: E402


def rendered(frames: int, long_side: int, fps: float) -> bytes:
    from clips import CLIPS_START, render_clip, write_mp4
    clip = render_clip(CLIPS_START + 50, n_frames=frames, fps=fps, long_side=long_side, rise_deg=30.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        write_mp4(clip, str(path))
        return path.read_bytes()


def timed(work) -> tuple[float, float, object]:
    """Wall and CPU seconds (every thread of this process) of ``work()``, and its answer."""
    wall, cpu = time.perf_counter(), time.process_time()
    answer = work()
    return time.perf_counter() - wall, time.process_time() - cpu, answer


def decode_only(data: bytes) -> int:
    with Clip(data) as clip:
        return sum(1 for _ in clip.frames())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--long-side", type=int, default=1920)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--protocol", default="heel_raise")
    parser.add_argument("--no-search-only", action="store_true", help="skip the every-frame-searched comparison")
    parser.add_argument("--all-shifts", action="store_true",
                        help="follow with all of stage 2's shifted crops per frame, as a photo (default: one a frame)")
    args = parser.parse_args()
    data = args.clip.read_bytes() if args.clip else rendered(args.frames, args.long_side, args.fps)
    info = Clip(data).info
    print(f"clip: {args.clip or 'rendered heel raise'}: {info.width}x{info.height}, {info.codec}, {info.fps} fps, "
          f"{info.frames} frames, rotation {info.rotation_deg}")
    videos = VideoMeasurer(one_crop=not args.all_shifts)
    options = MeasureOptions(protocol=args.protocol)
    decode_only(data)  # warm: codec, caches
    videos.measure_clip(data, options)  # warm: models, first-run allocations
    decode_s, decode_cpu, n = timed(lambda: decode_only(data))
    product_s, product_cpu, result = timed(lambda: videos.measure_clip(data, options))
    measured = sum(f.status == "ok" for f in result.frames)
    print("wall clock (shared machine: the CPU figures say what the work costs, whoever else runs)")
    print(f"decode alone:     {n / decode_s:7.1f} frames/s; {decode_cpu / n * 1e3:.1f} ms CPU a frame")
    print(f"product, tracked: {n / product_s:7.1f} frames/s; {product_cpu / n * 1e3:.1f} ms CPU a frame; "
          f"{product_s / decode_s:.2f}x decoding alone (wall), {product_cpu / decode_cpu:.2f}x (CPU); "
          f"{result.frames_followed} of {n} frames followed (stage 2 only), {measured} measured; {result.status}"
          + (f", {result.movement.angle_deg:.1f} deg at frame {result.movement.key_frame}" if result.movement else ""))
    if not args.no_search_only:
        videos.follower = None  # every frame searched: stage 1 and 2
        search_s, search_cpu, searched = timed(lambda: videos.measure_clip(data, options))
        print(f"every frame searched: {n / search_s:5.1f} frames/s; {search_cpu / n * 1e3:.1f} ms CPU a frame "
              f"({search_cpu / product_cpu:.1f}x the tracked CPU); {sum(f.status == 'ok' for f in searched.frames)} "
              "measured")

if __name__ == "__main__":
    main()
