"""`streetwatch bench api` runs end to end (briefly) and reports sane figures; the figures
themselves are for benchmarks/README.md, not for assertions."""

from __future__ import annotations

import json

from benchmarks.api_bench import run, street_jpeg


def test_bench_api_short_run_on_sqlite(tmp_path):
    frame = street_jpeg()
    assert 60_000 < len(frame) <= 110_000 and frame[:3] == b"\xff\xd8\xff"
    (result,) = run(["sqlite"], workers=1, clients=2, seconds=2, warmup=0.5, json_out=tmp_path / "r.json")
    assert result.events > 0 and result.errors == 0, result.error_samples
    # warm-up posts open orders too, so compare with every accepted post, not the window's
    assert result.events < result.posted and 0 < result.orders <= result.posted
    assert result.p50_ms <= result.p95_ms <= result.p99_ms
    assert json.loads((tmp_path / "r.json").read_text())[0]["backend"] == "sqlite"
