"""The same weights at several input sizes, timed in one run on the edge's own backend: the cost
side of choosing 320 or 416 px (`streetwatch eval --imgsz` gives the accuracy side).

    .venv/bin/python -m benchmarks.model_speed models/streetwatch-v5 [--sizes 320,416,480] [--frames 64]

Frames are 1280×720 stills of the demo street, in batches of 8 as the edge's inference queue
forms them, on one thread per process as the edge's workers run. Each size is timed twice,
interleaved (A B C A B C), and the faster round is kept, so a burst of other work on the machine
lands in one round, not on one size. The ratio against the first size is the figure to read: the
edge's camera capacity (benchmarks/README.md, bench edge) shrinks by about the same factor.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm


def frames(count: int) -> list[np.ndarray]:
    """Varied street-like 1280×720 frames (the synthetic scene renderer), so NMS sees boxes."""
    from datasets.synth.scene import random_scene, render_scene

    return [render_scene(random_scene(seed, 1280, 720))[0] for seed in range(count)]


def time_size(detector, batch: list[np.ndarray], frames_: list[np.ndarray]) -> float:
    """Milliseconds per frame over all `frames_`, in batches of len(batch)."""
    start = time.perf_counter()
    for i in range(0, len(frames_), len(batch)):
        detector.detect_batch(frames_[i:i + len(batch)])
    return (time.perf_counter() - start) * 1000 / len(frames_)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder with manifest.yaml and an ONNX export")
    parser.add_argument("--sizes", default="320,416,480", help="input sizes, comma-separated; the first is the base")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--detector", default="onnxruntime", choices=["onnxruntime", "openvino"])
    args = parser.parse_args(argv)

    from vision.detector import load_detector
    from vision.manifest import load_manifest

    sizes = [int(s) for s in args.sizes.split(",")]
    manifest = load_manifest(args.model)
    detectors = {s: load_detector(manifest.model_copy(update={"imgsz": s}), args.detector, threads=1) for s in sizes}
    stills = frames(args.frames)
    for s in sizes:  # warm-up: first calls allocate
        detectors[s].detect_batch(stills[:8])
    best = {s: float("inf") for s in sizes}
    for _ in tqdm(range(2), desc="rounds", unit="round"):
        for s in sizes:
            best[s] = min(best[s], time_size(detectors[s], stills[:8], stills))
    base = sizes[0]
    print(f"{manifest.name} v{manifest.version}, {args.detector}, one thread, {args.frames} frames of 1280×720, batches of 8")
    print("| input size | ms per frame | frames/s per thread | cost against " + f"{base} px |")
    print("|---:|---:|---:|---:|")
    for s in sizes:
        print(f"| {s} | {best[s]:.1f} | {1000 / best[s]:.1f} | {best[s] / best[base]:.2f}× |")


if __name__ == "__main__":
    main()
