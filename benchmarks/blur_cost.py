"""CPU per event of the privacy blur (vision/privacy.py) at the frame sizes cameras send.

    .venv/bin/python -m benchmarks.blur_cost [--image PHOTO] [--repeats 5]

Runs on one OpenCV thread, as the edge's evidence thread does (streams/pipeline.py), on a
rendered synthetic street scene (or PHOTO) scaled to each size, and prints the median CPU
seconds. The cost depends on the picture: busy texture keeps more windows alive longer.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
from tqdm import tqdm

from datasets.synth.scene import random_scene, render_scene
from vision.privacy import PrivacyFilter

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="a photo to use instead of a synthetic scene")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    scene = cv2.imread(args.image) if args.image else render_scene(random_scene(11, 1920, 1080))[0]
    if scene is None:
        parser.error(f"{args.image}: not a readable image")
    privacy = PrivacyFilter()
    privacy.blur(cv2.resize(scene, SIZES["720p"]))  # loads the cascades
    for name, size in SIZES.items():
        frame = cv2.resize(scene, size)
        costs = []
        for _ in tqdm(range(args.repeats), desc=name, leave=False):
            start = time.process_time()
            privacy.blur(frame)
            costs.append(time.process_time() - start)
        print(f"{name:6s} {size[0]}x{size[1]}: {statistics.median(costs):.2f} s of CPU per blur "
              f"(min {min(costs):.2f}, max {max(costs):.2f}, {args.repeats} runs)")


if __name__ == "__main__":
    main()
