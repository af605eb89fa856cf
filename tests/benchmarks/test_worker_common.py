"""The helpers both edge benches' children share (benchmarks/worker_common.py)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import pytest

from benchmarks.worker_common import DiscardUploader, cpu_seconds, emit, measure_window, wait_for


def test_wait_for_says_how_long_a_condition_took_or_none_when_it_never_held():
    t0 = time.monotonic()
    assert wait_for(lambda: time.monotonic() - t0 > 0.15, 5, poll_s=0.01) >= 0.15
    assert wait_for(lambda: False, 0.1, poll_s=0.01) is None


def test_a_window_reports_the_cameras_cpu_over_its_own_length():
    # a fake camera server that has spent one CPU second more each time it is asked
    spent = itertools.count()
    window = measure_window(0.2, lambda: float(next(spent)))
    assert window.end - window.start >= 0.2
    # one CPU second over the window's length; computed as (1 / length) * 100, so compare as floats
    assert window.cameras_cpu_percent == pytest.approx(100 / (window.end - window.start))
    assert 0 <= window.cpu_percent < 400  # this process, sleeping


def test_a_camera_server_that_is_gone_counts_no_cpu_and_this_process_counts_its_own():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert cpu_seconds(proc.pid) == 0.0
    before = cpu_seconds()
    deadline = time.monotonic() + 10
    while cpu_seconds() == before and time.monotonic() < deadline:  # CPU time is counted in ticks
        sum(i * i for i in range(100_000))
    assert cpu_seconds() > before


def test_results_go_to_the_parent_as_one_json_line_and_the_uploader_keeps_nothing(capsys):
    emit({"cameras": 8, "sustained": True})
    line = capsys.readouterr().out
    assert line.startswith("RESULT ") and line.endswith("\n") and json.loads(line[7:]) == {"cameras": 8, "sustained": True}
    sink = DiscardUploader()
    sink.start()
    sink.submit(object())
    assert sink.pending() == 0 and sink.sent == sink.rejected == 0
    sink.stop()
