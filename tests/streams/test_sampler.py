"""FrameSampler: which frames get analysed. Pure, no video."""

import random

import pytest

from streams.sampler import FrameSampler


def take(sampler, times):
    return [t for t in times if sampler.should_take(t)]


def test_first_frame_then_one_per_interval():
    assert take(FrameSampler(1.0), [100.0, 100.1, 100.5, 100.99, 101.0, 101.5, 102.2, 102.3]) == [100.0, 101.0, 102.2]


def test_fixed_grid_gives_exact_rate_despite_jitter():
    rng = random.Random(7)
    frames = [k / 10 + rng.uniform(-0.02, 0.02) for k in range(600)]  # 60 s of 10 fps with jitter
    taken = take(FrameSampler(2.0), frames)
    assert len(taken) == 30  # not ~28 as with "interval after the last one taken"
    assert all(b - a >= 2.0 - 0.1 - 0.04 for a, b in zip(taken, taken[1:]))


def test_camera_slower_than_interval_gives_every_frame():
    assert take(FrameSampler(1.0), [0, 1.5, 3.0, 4.5]) == [0, 1.5, 3.0, 4.5]


def test_clock_jump_back_restarts_at_once():
    s = FrameSampler(1.0)
    assert take(s, [1000.0, 1000.5, 1001.0]) == [1000.0, 1001.0]
    assert s.should_take(10.0)  # the clock went back ~17 minutes: do not wait it out
    assert take(s, [10.5, 11.0, 11.4, 12.0]) == [11.0, 12.0]


def test_small_backward_jitter_adds_no_sample():
    s = FrameSampler(1.0)
    assert take(s, [5.0, 5.9, 5.3, 5.95]) == [5.0]


def test_clock_jump_forward_takes_one_then_keeps_the_interval():
    s = FrameSampler(1.0)
    assert take(s, [0.0, 3600.0, 3600.2, 3600.9, 3601.0]) == [0.0, 3600.0, 3601.0]  # no burst of catch-up frames


def test_reset_takes_the_next_frame():
    s = FrameSampler(10.0)
    assert s.should_take(0.0) and not s.should_take(1.0)
    s.reset()
    assert s.should_take(1.5)


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_interval_must_be_positive(bad):
    with pytest.raises(ValueError):
        FrameSampler(bad)
