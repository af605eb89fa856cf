"""Event-level evaluation on a rendered clip: which issues of the timeline became events, and when.

Runs the edge's own frame processing (detector → zones → tracker → confirmer) over the
clip's frames at the sampling interval, without RTSP or an API, and compares the events
with the clip's ground-truth timeline (clip.json beside clip.mp4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av

from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from vision.detector import load_detector
from vision.manifest import load_manifest


@dataclass
class ClipResult:
    found: dict[str, float | None]  # issue type → seconds from appearance to event (None: missed)
    false_events: list[str]  # events of issue types not in the timeline, or repeated ones

    @property
    def ok(self) -> bool:
        return all(v is not None for v in self.found.values()) and not self.false_events


class _Discard:
    def submit(self, item) -> None:
        pass


def evaluate_clip(model_dir: Path, clip: Path, sample_interval_s: float = 1.0, confirm_seconds: float = 5.0) -> ClipResult:
    timeline = json.loads(Path(clip).with_suffix(".json").read_text())
    manifest = load_manifest(model_dir)
    issues = {t: {"confirm_seconds": confirm_seconds, "min_hits": 3} for t in ("street_vending", "clutter", "flooding")}
    config = EdgeConfig.model_validate({"model": str(model_dir), "issues": issues,
                                        "cameras": [{"name": "clip", "url": str(Path(clip).resolve())}]})
    pipeline = EdgePipeline(config, detector=load_detector(manifest), uploader=_Discard())
    expected = {i["issue_type"]: i for i in timeline["issues"]}
    found: dict[str, float | None] = {t: None for t in expected}
    false_events: list[str] = []
    with av.open(str(clip)) as container:
        next_t = 0.0
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t + 1e-6 < next_t:
                continue
            next_t = t + sample_interval_s
            for item in pipeline.process_frame("clip", frame.to_ndarray(format="bgr24"), t):
                kind = item.event.issue_type.value
                if kind in found and found[kind] is None:
                    found[kind] = round(t - expected[kind]["appear_s"], 1)
                else:
                    false_events.append(f"{kind}@{t:.0f}s")
    return ClipResult(found, false_events)
