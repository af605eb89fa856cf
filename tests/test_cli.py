import subprocess
import sys
from pathlib import Path

import streetwatch_cli

ROOT = Path(__file__).resolve().parent.parent


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("model: no-such-model\ncameras: [{name: a, url: rtsp://127.0.0.1:1/a}]\n")
    assert streetwatch_cli.main(["edge", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streetwatch: ") and "manifest not found" in err and "\n" not in err


def test_check_config_reports_the_bad_field(tmp_path, capsys):
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("cameras: [{name: a, url: rtsp://x/a, lattitude: 3}]\n")
    assert streetwatch_cli.main(["check-config", str(cfg)]) == 2
    assert "cameras.0.lattitude" in capsys.readouterr().err


def test_example_config_is_valid(capsys):
    assert streetwatch_cli.main(["check-config", str(ROOT / "streetwatch.example.yaml")]) == 0


def test_bundled_manifest_loads_without_torch():
    # api/ and the manifest loader must not pull in torch or ultralytics.
    code = ("import sys, api.main, vision.manifest; vision.manifest.load_manifest('models/streetwatch-demo'); "
            "bad = [m for m in ('torch', 'ultralytics', 'cv2') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
