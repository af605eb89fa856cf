"""The sampling part of the edge config: modes per camera, intervals per issue type, transports."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.config import EdgeConfig
from streams.sampling import camera_interval, camera_mode, camera_transport, is_sparse


def config(**kw) -> EdgeConfig:
    return EdgeConfig.model_validate({"cameras": [{"name": "a", "url": "rtsp://10.0.0.1/s"}], **kw})


def test_a_box_mixes_modes_and_each_camera_gets_its_own():
    cfg = config(mode="rtsp_snapshot", sample_interval_s=30, rtsp_transport="tcp", cameras=[
        {"name": "stall-cam", "url": "rtsp://10.0.0.1/s", "mode": "stream", "sample_interval_s": 2},
        {"name": "river", "url": "rtsp://10.0.0.2/s", "rtsp_transport": "udp"},
        {"name": "isapi", "mode": "http_snapshot",
         "snapshot_url": "http://admin:pw@10.0.0.3/ISAPI/Streaming/channels/101/picture"},
    ])
    stall, river, isapi = cfg.cameras
    assert [camera_mode(cfg, c) for c in cfg.cameras] == ["stream", "rtsp_snapshot", "http_snapshot"]
    assert [is_sparse(cfg, c) for c in cfg.cameras] == [False, True, True]
    assert camera_transport(cfg, stall) == "tcp" and camera_transport(cfg, river) == "udp"
    assert camera_interval(cfg, stall) == 2 and camera_interval(cfg, river) == 30


def test_defaults_keep_todays_behaviour_and_transport_is_auto():
    cfg = config()
    assert camera_mode(cfg, cfg.cameras[0]) == "stream" and not is_sparse(cfg, cfg.cameras[0])
    assert camera_transport(cfg, cfg.cameras[0]) == "auto"


def test_a_stream_sampled_every_10_s_or_more_confirms_by_region():
    cfg = config(sample_interval_s=30)
    assert is_sparse(cfg, cfg.cameras[0])


def test_interval_per_issue_type_the_shortest_of_the_watched_types():
    cfg = config(sample_interval_s=60, issues={"street_vending": {"sample_interval_s": 10},
                                               "flooding": {"sample_interval_s": 120}},
                 cameras=[{"name": "all", "url": "rtsp://h/a"},
                          {"name": "road", "url": "rtsp://h/b", "zones": {"road": {
                              "polygon": [[0, 0], [10, 0], [10, 10]], "issue_types": ["flooding", "clutter"]}}},
                          {"name": "own", "url": "rtsp://h/c", "sample_interval_s": 5}])
    assert [camera_interval(cfg, c) for c in cfg.cameras] == [10, 120, 5]


def test_rtsp_snapshot_below_the_cost_of_a_connection_keeps_its_session():
    cfg = config(mode="rtsp_snapshot", sample_interval_s=3)
    assert camera_mode(cfg, cfg.cameras[0]) == "stream"
    cfg = config(mode="rtsp_snapshot", sample_interval_s=3, snapshot={"keep_session_below_s": 0})
    assert camera_mode(cfg, cfg.cameras[0]) == "rtsp_snapshot"


@pytest.mark.parametrize("cameras, says", [
    ([{"name": "a", "mode": "http_snapshot", "url": "rtsp://h/a"}], r"cameras.0 \(a\): mode http_snapshot needs snapshot_url"),
    ([{"name": "a", "snapshot_url": "http://h/snap.jpg"}], r"cameras.0 \(a\): mode stream needs url"),
    ([{"name": "a", "mode": "rtsp_snapshot", "url": "/clip.mp4"}], "mode rtsp_snapshot needs an rtsp:// url"),
    ([{"name": "a", "mode": "http_snapshot", "snapshot_url": "rtsp://h/a"}], "must be an http:// or https:// URL"),
    ([{"name": "a", "url": "rtsp://h/a", "mode": "snapshot"}], "Input should be 'stream', 'rtsp_snapshot'"),
    ([{"name": "a", "url": "rtsp://h/a", "rtsp_transport": "quic"}], "Input should be 'tcp', 'udp' or 'auto'"),
])
def test_mistakes_name_the_camera_and_field(cameras, says):
    with pytest.raises(ValidationError, match=says):
        EdgeConfig.model_validate({"cameras": cameras})


def test_min_hits_cannot_exceed_the_sample_window():
    with pytest.raises(ValidationError, match=r"min_hits \(6\) cannot exceed sample_window \(5\)"):
        config(issues={"clutter": {"min_hits": 6, "sample_window": 5}})
    assert config(issues={"clutter": {"min_hits": 8}}).issue("clutter").sample_window is None  # then 8


def test_the_example_config_shows_every_mode_and_a_udp_camera():
    """streetwatch.example.yaml is where a new user learns the modes: one camera of each, as the
    box would run them."""
    from pathlib import Path

    from streams.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "streetwatch.example.yaml")
    modes = {c.name: camera_mode(cfg, c) for c in cfg.cameras}
    assert set(modes.values()) == {"stream", "rtsp_snapshot", "http_snapshot"}, modes
    snapshots = [c for c in cfg.cameras if modes[c.name] != "stream"]
    assert all(is_sparse(cfg, c) and camera_interval(cfg, c) >= 30 for c in snapshots)
    assert any(c.snapshot_url for c in snapshots if modes[c.name] == "http_snapshot")
    assert "udp" in {camera_transport(cfg, c) for c in cfg.cameras}
