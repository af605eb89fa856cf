from pathlib import Path

from benchmarks.model_speed import main

ROOT = Path(__file__).resolve().parents[2]


def test_model_speed_times_each_size_against_the_first(capsys):
    main([str(ROOT / "models" / "streetwatch-demo"), "--sizes", "320,416", "--frames", "8"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 3") or line.startswith("| 4")]
    assert [r.split("|")[1].strip() for r in rows] == ["320", "416"]
    assert rows[0].split("|")[4].strip() == "1.00×" and float(rows[1].split("|")[2]) > 0
