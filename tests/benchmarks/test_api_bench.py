"""`streetwatch bench api` runs end to end (briefly) and reports sane figures; the figures
themselves are for benchmarks/README.md, not for assertions."""

from __future__ import annotations

import json

from benchmarks.api_bench import run, street_jpeg


def test_bench_api_short_run_on_sqlite(tmp_path):
    frame = street_jpeg()
    assert 95_000 < len(frame) <= 102_400 and frame[:3] == b"\xff\xd8\xff"
    one, two = run(["sqlite"], workers=1, clients=[1, 2], seconds=2, warmup=0.5, json_out=tmp_path / "r.json")
    for result in (one, two):
        assert result.events > 0 and result.errors == 0, result.error_samples
        # warm-up posts open orders too, so compare with every accepted post, not the window's
        assert result.events < result.posted and 0 < result.orders
        assert result.p50_ms <= result.p95_ms <= result.p99_ms
    # the second client count runs against the first one's database: its orders are still there
    assert one.orders <= one.posted and one.orders <= two.orders <= one.posted + two.posted
    written = json.loads((tmp_path / "r.json").read_text())
    assert [(r["backend"], r["clients"]) for r in written] == [("sqlite", 1), ("sqlite", 2)]


def test_bench_api_batch_run_counts_events_not_requests(tmp_path):
    (result,) = run(["sqlite"], workers=1, clients=[2], seconds=2, warmup=0.5, batch=5)
    assert result.batch == 5 and result.errors == 0, result.error_samples
    assert result.requests > 0 and result.events == 5 * result.requests
    assert result.events_per_s == result.events / result.seconds
