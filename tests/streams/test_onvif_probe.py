"""`streetwatch camera probe` against a fake ONVIF camera the test starts (SOAP 1.2, WS-Security
UsernameToken digest), through the real ONVIF client (onvif-zeep-async)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streams.camera_server import free_port
from streams.config import EdgeConfig
from streams.onvif_probe import ProbeError, config_lines, probe
from tests.streams.onvif_fake import FakeOnvifCamera

ROOT = Path(__file__).resolve().parents[2]


def test_profiles_with_stream_and_snapshot_uris_carrying_the_credentials():
    with FakeOnvifCamera(user="admin", password="p@ss:word") as cam:
        profiles = probe(f"http://admin:p%40ss%3Aword@127.0.0.1:{cam.port}", timeout_s=10)
    assert [p.token for p in profiles] == ["Profile_1", "Profile_2"]
    main = profiles[0]
    assert (main.encoding, main.width, main.height) == ("H264", 1920, 1080)
    assert main.rtsp_uri == "rtsp://admin:p%40ss%3Aword@127.0.0.1:554/Streaming/Channels/101"
    assert main.snapshot_uri.endswith("/ISAPI/Streaming/channels/101/picture")
    assert main.snapshot_uri.startswith("http://admin:p%40ss%3Aword@127.0.0.1:")
    assert {"GetServices", "GetProfiles", "GetStreamUri", "GetSnapshotUri"} <= set(cam.actions)


def test_the_printed_lines_are_a_valid_camera_config_and_hide_the_password():
    with FakeOnvifCamera(snapshot=False) as cam:
        profiles = probe(f"http://admin:secret@127.0.0.1:{cam.port}", timeout_s=10)
    text = config_lines(profiles, "127.0.0.1")
    assert "secret" not in text and "admin:***@" in text
    shown = config_lines(profiles, "127.0.0.1", show_password=True)
    cameras = yaml.safe_load(shown.replace("\n  - ", "\n- ").replace("\n    ", "\n  "))
    config = EdgeConfig.model_validate({"cameras": cameras})
    assert config.cameras[0].mode == "rtsp_snapshot"  # no snapshot URI offered: the RTSP grab
    assert config.cameras[0].url == "rtsp://admin:secret@127.0.0.1:554/Streaming/Channels/101"


def test_wrong_password_and_no_camera_are_one_line_errors():
    with FakeOnvifCamera() as cam, pytest.raises(ProbeError, match="refused the credentials"):
        probe(f"http://admin:wrong@127.0.0.1:{cam.port}", timeout_s=10)
    with pytest.raises(ProbeError, match="cannot connect|no ONVIF answer|Cannot connect"):
        probe(f"http://admin:x@127.0.0.1:{free_port()}", timeout_s=5)


def test_the_command_prints_config_lines():
    with FakeOnvifCamera() as cam:
        done = subprocess.run([sys.executable, "-m", "streetwatch_cli", "camera", "probe",
                               f"http://admin:secret@127.0.0.1:{cam.port}"], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "snapshot_url: http://admin:***@127.0.0.1:" in done.stdout and "mode: http_snapshot" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "streetwatch_cli", "camera", "probe", "rtsp://cam/x"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 1 and "over http:// or https://" in bad.stderr
