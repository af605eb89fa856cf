import subprocess
import sys
from pathlib import Path

import streetwatch_cli
from streams.camera_server import free_port

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


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The CLI in its own process: settings are read once per process (api/settings.py)."""
    import os

    return subprocess.run([sys.executable, "-m", "streetwatch_cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_environment_errors_are_one_line_not_tracebacks(tmp_path):
    """A bad STREETWATCH_* setting, a database URL that is not one, a database that is not
    there: each printed a traceback (or a page of pydantic)."""
    err = one_line_error(run_cli("api", "migrate", STREETWATCH_AUTO_DISPATCH="maybe"))
    assert err.startswith("streetwatch: setting STREETWATCH_AUTO_DISPATCH:")
    assert "database" in one_line_error(run_cli("api", "migrate", STREETWATCH_DATABASE_URL="notaurl"))
    refused = run_cli("api", "migrate", STREETWATCH_DATABASE_URL="postgresql+psycopg://u@127.0.0.1:1/x")
    assert "connection" in one_line_error(refused).lower()
    folder_is_a_file = tmp_path / "file"
    folder_is_a_file.write_text("x")
    db = {"STREETWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'sw.db'}"}
    assert run_cli("api", "migrate", **db).returncode == 0
    err = one_line_error(run_cli("dataset", "export-reviews", "--out", str(folder_is_a_file), **db))
    assert err.startswith("streetwatch: ") and "file" in err.lower()


def test_serving_an_unmigrated_database_stops_with_one_line(tmp_path):
    """With two workers each worker refused, and the supervisor restarted it, for ever."""
    db = {"STREETWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}", "STREETWATCH_SECRET_KEY": "k" * 40}
    for workers in ("1", "2"):
        result = run_cli("api", "serve", "--workers", workers, "--port", str(free_port()), **db)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "streetwatch api migrate" in lines[0], result.stderr


def test_bad_flag_values_are_refused_by_the_parser(capsys):
    import pytest

    for argv in (["api", "serve", "--port", "99999"], ["demo", "--port", "0"], ["train", "x.yaml", "--epochs", "0"],
                 ["api", "create-key", "--name", " ", "--role", "admin"], ["bench", "api", "--workers", "0"],
                 ["bench", "api", "--seconds", "0"], ["bench", "edge", "--warmup", "nan"],
                 ["bench", "edge", "--cameras", "-3"], ["bench", "api", "--clients", "4,0"]):
        with pytest.raises(SystemExit) as exit_:
            streetwatch_cli.main(argv)
        assert exit_.value.code == 2, argv
        assert "error: argument" in capsys.readouterr().err


def test_train_on_a_yaml_that_is_no_dataset_is_one_line(tmp_path, capsys):
    for text in ("5\n", "- a\n- b\n", "names: {0: a}\n"):  # a number, a list, a data.yaml without train:
        path = tmp_path / "x.yaml"
        path.write_text(text)
        assert streetwatch_cli.main(["train", str(path)]) == 2
        assert "neither a dataset" in capsys.readouterr().err


def test_check_config_loads_the_model_and_counts_enabled_cameras(tmp_path, capsys):
    model = ROOT / "models" / "streetwatch-demo"
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(f"model: {model}\ncameras: [{{name: a, url: rtsp://127.0.0.1:1/a, enabled: false}}]\n")
    assert streetwatch_cli.main(["check-config", str(cfg)]) == 2
    assert "every camera is disabled" in capsys.readouterr().err
    cfg.write_text(f"model: {tmp_path / 'nothing'}\ncameras: [{{name: a, url: rtsp://127.0.0.1:1/a}}]\n")
    assert streetwatch_cli.main(["check-config", str(cfg)]) == 2  # `edge` would refuse it: so does the check
    assert "manifest not found" in capsys.readouterr().err


def test_an_outbox_that_cannot_be_made_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(f"model: {ROOT / 'models' / 'streetwatch-demo'}\nhttp: null\n"
                   f"outbox: {{path: {tmp_path / 'afile' / 'ob'}}}\ncameras: [{{name: a, url: rtsp://127.0.0.1:1/a}}]\n")
    assert streetwatch_cli.main(["edge", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streetwatch: outbox.path") and "\n" not in err


def test_a_corrupt_onnx_export_is_a_one_line_error(tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(ROOT / "models" / "streetwatch-demo", model)
    (model / "streetwatch-demo.onnx").write_bytes(b"\x00garbage, not a protobuf")
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(f"model: {model}\nhttp: null\noutbox: {{path: {tmp_path / 'ob'}}}\n"
                   "cameras: [{name: a, url: rtsp://127.0.0.1:1/a}]\n")
    assert streetwatch_cli.main(["edge", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a usable ONNX model" in err and "model export" in err and "\n" not in err


def test_demo_on_a_taken_port_says_so_before_any_setup(capsys):
    import signal
    import socket

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            assert streetwatch_cli.main(["demo", "--port", str(port)]) == 2
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    err = capsys.readouterr().err.strip()
    assert f"port {port} is in use" in err and "\n" not in err


def test_train_on_a_malformed_yaml_or_bad_names_is_one_line_before_ultralytics(tmp_path, capsys, monkeypatch):
    import vision.train

    monkeypatch.setattr(vision.train, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    for text, message in (("name: x\nclasses: [a\n", "not valid YAML"),
                          ("train: images/train\nnames: 5\n", "'names' must be a list"),
                          ("train: images/train\nnames: {a: x}\n", "'names' keys must be class ids")):
        path = tmp_path / "x.yaml"
        path.write_text(text)
        assert streetwatch_cli.main(["train", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"streetwatch: {path}") and message in err and "\n" not in err, err


def test_train_on_a_recipe_rebuilds_when_a_source_gains_images(tmp_path, capsys, monkeypatch):
    """Only recipe.yaml was compared: a new review export in a source was silently left out."""
    import vision.train
    from PIL import Image

    from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe

    trained = []
    monkeypatch.setattr(vision.train, "train", lambda data, **_: trained.append(data) or Path("best.pt"))
    monkeypatch.chdir(tmp_path)  # the build goes to var/datasets/<name> from here
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    recipe = str(write_recipe(tmp_path))
    built = tmp_path / "var" / "datasets" / "tiny"

    def train_once() -> str:
        assert streetwatch_cli.main(["train", recipe]) == 0
        return capsys.readouterr().out.splitlines()[0]

    assert "building" in train_once()
    assert "reusing the build" in train_once()
    Image.new("RGB", (64, 48)).save(tmp_path / "src" / "train" / "images" / "new.jpg")
    assert "building" in train_once()
    assert any(p.stem == "real__new" for p in built.glob("images/*/*.jpg"))
    assert "reusing the build" in train_once() and len(trained) == 4
