"""Speed of one photo through the product, against decoding the same photo at full resolution.

    python bench/speed.py [--photo PATH] [--megapixels 12] [--repeat 10]

The photo (default: a sample render) is resized to --megapixels and JPEG-encoded, as a phone
would hand it over. Prints, warm, median of --repeat: the full-resolution decode (Pillow, every
pixel), the product's end-to-end time (decode at the reduced size it uses, detect, assess) and
its parts, and their ratio; issue 18's target is an end-to-end time of at most 1.0x the
full-resolution decode. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

import cv2
from PIL import Image

from toeangle.pipeline import Measurer
from toeangle.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def phone_jpeg(path: Path, megapixels: float) -> bytes:
    rgb = cv2.imread(str(path))
    h, w = rgb.shape[:2]
    scale = (megapixels * 1e6 / (w * h)) ** 0.5
    big = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def full_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        im.load()


def median_ms(fn, repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "normal_left_closeup.jpg")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    data = phone_jpeg(args.photo, args.megapixels)
    with Image.open(io.BytesIO(data)) as im:
        size = im.size
    measurer = Measurer(Settings(detector=os.environ.get("TOEANGLE_DETECTOR", "keypoint")))
    parts: list[dict[str, float]] = []

    def measure() -> None:
        parts.append(measurer.measure_photo(data).result.timings_ms)

    decode_ms = median_ms(lambda: full_decode(data), args.repeat)
    total_ms = median_ms(measure, args.repeat)
    print(f"photo {args.photo.name} at {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} MP, {len(data) / 1e6:.1f} MB), "
          f"{os.cpu_count()} cores, median of {args.repeat}")
    print(f"full-resolution decode (Pillow): {decode_ms:7.1f} ms")
    print(f"end to end (toeangle):           {total_ms:7.1f} ms  = {total_ms / decode_ms:.2f}x the full decode "
          "(target <= 1.0x)")
    for key in parts[0]:
        print(f"  {key:<12} {statistics.median(p[key] for p in parts[1:]):7.1f} ms")


if __name__ == "__main__":
    main()
