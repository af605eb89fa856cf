"""What the camera reader decodes: one keyframe per analysed frame when the GOP allows,
else whole GOPs only when the due frame lies in them."""

from __future__ import annotations

import pytest

from streams.decode_plan import Action, DecodePlan


def feed(plan: DecodePlan, seconds: float, fps: int, gop_frames: int, jitter=lambda i: 0.0):
    """Packets of a live camera: (time, keyframe, action)."""
    out = []
    for i in range(int(seconds * fps)):
        t = i / fps
        out.append((t, i % gop_frames == 0, plan.on_packet(t + jitter(i), i % gop_frames == 0, t)))
    return out


def delivered(packets):
    return [t for t, _, a in packets if a in (Action.DELIVER, Action.DELIVER_KEY)]


def test_keyframe_mode_decodes_one_keyframe_per_interval():
    plan = DecodePlan(2.0)
    packets = feed(plan, 30, fps=25, gop_frames=25)  # 1 s GOPs
    assert plan.gop_s == pytest.approx(1.0) and plan.keyframe_mode()
    later = [p for p in packets if p[0] >= 3]  # once the GOP is known
    assert all(a is Action.SKIP for t, key, a in later if not key)  # P-frames never reach the decoder
    times = [t for t, _, a in later if a is Action.DELIVER_KEY]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps and all(g == pytest.approx(2.0) for g in gaps)
    decoded = sum(a is not Action.SKIP for t, _, a in later)
    assert decoded == len(times)  # exactly one decode per analysed frame


def test_keyframes_arriving_a_little_early_do_not_stretch_the_interval():
    plan = DecodePlan(2.0)
    # every keyframe arrives 30 ms before its nominal time (network jitter)
    packets = feed(plan, 40, fps=10, gop_frames=20, jitter=lambda i: -0.03 if i % 20 == 0 and i else 0.0)
    times = [t for t, _, a in packets if a is Action.DELIVER_KEY]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps and max(gaps) == pytest.approx(2.0)


def test_gop_mode_when_keyframes_are_rarer_than_the_interval():
    plan = DecodePlan(2.0)
    packets = feed(plan, 40, fps=10, gop_frames=80)  # 8 s GOPs
    assert plan.gop_s == pytest.approx(8.0) and not plan.keyframe_mode()
    times = delivered(packets)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g == pytest.approx(2.0) for g in gaps)  # decoding inside the GOP keeps the pace
    assert all(a is Action.SKIP for t, _, a in packets if t < 0)  # (nothing before the first keyframe)


def test_gop_mode_stops_decoding_once_the_due_frame_is_past():
    plan = DecodePlan(2.5)
    packets = feed(plan, 60, fps=10, gop_frames=30)  # 3 s GOPs: each holds one due frame, some two
    later = [p for p in packets if p[0] >= 6]
    decoded = sum(a is not Action.SKIP for _, _, a in later)
    assert decoded < 0.75 * len(later)  # the tail of a GOP after its last due frame is never decoded
    times = [t for t in delivered(packets) if t >= 6]
    assert all(b - a == pytest.approx(2.5) for a, b in zip(times, times[1:]))


def test_keyframe_mode_keeps_the_average_when_the_gop_does_not_divide_the_interval():
    plan = DecodePlan(10.0)
    packets = feed(plan, 200, fps=10, gop_frames=40)  # 4 s GOPs
    times = [t for t in delivered(packets) if t >= 8]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert sum(gaps) / len(gaps) == pytest.approx(10.0, abs=0.5)
    assert max(gaps) <= 10.0 + 4.0 / 2 + 1e-6  # never late by more than half a GOP


def test_nothing_is_decoded_before_the_first_keyframe_and_all_mode_decodes_everything():
    plan = DecodePlan(1.0)
    assert plan.on_packet(0.0, False, 0.0) is Action.SKIP
    assert plan.on_packet(0.1, True, 0.1) in (Action.DELIVER, Action.DELIVER_KEY)
    everything = DecodePlan(1.0, mode="all")
    actions = [a for _, _, a in feed(everything, 5, fps=10, gop_frames=10)]
    assert Action.SKIP not in actions and actions.count(Action.DELIVER) == 5


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="positive"):
        DecodePlan(0)
    with pytest.raises(ValueError, match="auto, keyframes, all"):
        DecodePlan(1, mode="some")
