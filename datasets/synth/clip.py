"""Short H.264 street clips with issues appearing and disappearing, plus a ground-truth timeline.

The scene is rendered once per set of visible issues; each frame then adds walking
pedestrians and fresh sensor noise, so the clip looks live without re-ray-casting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.synth import objects
from datasets.synth.background import random_look, random_water, render_background
from datasets.synth.camera import StreetCamera
from datasets.synth.scene import Placed, Scene, apply_camera_effects, render_layers

ISSUE_OF_CLASS = {"vending": "street_vending", "clutter": "clutter", "flooding": "flooding"}


@dataclass
class TimelineIssue:
    kind: str  # "vending", "clutter" or "flooding"
    appear_s: float
    disappear_s: float  # clip end = stays until the loop restarts
    x: float = 0.0
    z: float = 12.0
    seed: int = 0  # draws the object's shape (how many bags, which colours)


@dataclass
class TimelineEntry:
    issue_type: str
    class_name: str
    appear_s: float
    disappear_s: float
    box: tuple[float, float, float, float]  # pixel box while visible


DEMO_ISSUES = (
    TimelineIssue("vending", 3.0, 40.0, x=-5.6, z=15.0, seed=3),
    TimelineIssue("clutter", 9.0, 40.0, x=6.2, z=13.0, seed=4),
    TimelineIssue("flooding", 15.0, 40.0, x=-1.0, z=20.0),
)


def demo_camera(width: int, height: int) -> StreetCamera:
    return StreetCamera(width=width, height=height, cam_x=6.5, cam_h=6.0, pitch_deg=17.0, yaw_deg=-10.0,
                        hfov_deg=68.0, road_width=10.0, sidewalk_width=4.5,
                        building_height_left=18.0, building_height_right=14.0)


def render_clip(out: Path, seconds: float = 40.0, fps: int = 10, width: int = 960, height: int = 540,
                issues: tuple[TimelineIssue, ...] = DEMO_ISSUES, seed: int = 7, negatives: bool = True) -> Path:
    """Write `out` (H.264 MP4, one keyframe a second) and `out` with suffix .json (the timeline:
    one entry per issue that became visible). Several issues may share a kind, except flooding:
    the street has one water patch, for the first flooding issue."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg not found: install Debian's ffmpeg (scripts/bootstrap.sh does)")
    rng = np.random.default_rng(seed)
    cam = demo_camera(width, height)
    look = random_look(rng, "day")
    look.fog_distance, look.wet_road, look.shadow_x = float("inf"), False, None
    static = [Placed("car", 3.8, 8.0, 11), Placed("bin", 6.8, 16.0, 12), Placed("bin", -7.5, 9.0, 13)] if negatives else []
    walkers = [(-7.0 + 1.5 * i, 6 + 7 * i, 0.9 * (-1) ** i) for i in range(3)] if negatives else []
    water_issue = next((i for i in issues if i.kind == "flooding"), None)
    water = random_water(np.random.default_rng(seed + 1), cam, water_issue.z) if water_issue else None
    if water is not None:
        water.centers[:, 0] += water_issue.x - water.centers[:, 0].mean()
    base = Scene(camera=cam, look=look, effects_seed=seed, noise=2.5, jpeg_quality=85)

    cache: dict[tuple, tuple[np.ndarray, dict[int, tuple]]] = {}
    backgrounds: dict[bool, tuple] = {}
    entries: dict[int, TimelineEntry] = {}  # by index in `issues`: two of one kind are two entries
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mp4")
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
           "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
           "-g", str(fps), "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)]
    enc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    try:
        for f in tqdm(range(int(seconds * fps)), desc=f"clip {out.name}", unit="frame"):
            t = f / fps
            active = tuple(n for n, i in enumerate(issues) if i.appear_s <= t < i.disappear_s)
            if active not in cache:
                flooded = any(issues[n] is water_issue for n in active)
                if flooded not in backgrounds:
                    backgrounds[flooded] = render_background(cam, look, water if flooded else None)
                drawn = [n for n in active if issues[n].kind != "flooding"]
                placed = static + [Placed(issues[n].kind, issues[n].x, issues[n].z, issues[n].seed) for n in drawn]
                scene = Scene(**{**base.__dict__, "objects": placed, "water": water if flooded else None})
                img, labels = render_layers(scene, backgrounds[flooded])
                boxes = {}
                for lb in labels:  # each label names the object it is of: back to the issue
                    if lb.source is None and flooded:
                        boxes[issues.index(water_issue)] = lb.box
                    elif lb.source is not None and lb.source >= len(static):
                        boxes[drawn[lb.source - len(static)]] = lb.box
                cache[active] = (img, boxes)
            img, boxes = cache[active]
            frame = img.copy()
            for wx, wz, speed in walkers:  # pedestrians walking along the sidewalk: not issues
                painter = objects.Painter(frame, cam, look.ambient)
                objects.draw_person(painter, np.random.default_rng(int(wz)), wx, wz + (speed * t) % 25)
            for n, box in boxes.items():
                issue = issues[n]
                entries.setdefault(n, TimelineEntry(ISSUE_OF_CLASS[issue.kind], issue.kind, issue.appear_s,
                                                    min(issue.disappear_s, seconds), box))
            enc.stdin.write(apply_camera_effects(frame, base, f).tobytes())
        enc.stdin.close()
        if enc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed writing {out}")
        tmp.replace(out)
    finally:
        if enc.poll() is None:
            enc.kill()
        tmp.unlink(missing_ok=True)
    timeline = {"seconds": seconds, "fps": fps, "width": width, "height": height,
                "issues": [asdict(e) for e in entries.values()]}
    out.with_suffix(".json").write_text(json.dumps(timeline, indent=2))
    return out
