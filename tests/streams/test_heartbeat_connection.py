"""A box keeps one connection to the API from one heartbeat to the next: `streetwatch api
serve` keeps idle connections longer than a heartbeat interval, and the edge's client does
not drop its own first (both sides' defaults, 5 s, made every heartbeat a new connection)."""

from __future__ import annotations

import subprocess
import time

import httpx

from api.fleet_schemas import ModelInfo
from api.keepalive import CLIENT_KEEP_ALIVE_S, SERVER_KEEP_ALIVE_S
from streams.config import EdgeConfig
from streams.heartbeat import HeartbeatSender
from tests.streams.api_process import ApiProcess

IDLE_S = 6.5  # past uvicorn's and httpx's own 5 s


def test_heartbeats_seconds_apart_share_one_connection(tmp_path):
    assert 30 < CLIENT_KEEP_ALIVE_S < SERVER_KEEP_ALIVE_S  # the edge closes first, after a 30 s interval
    api = ApiProcess(tmp_path)
    api.env["STREETWATCH_KEEPALIVE_REQUESTS"] = "0"  # no rotation: only idleness may close it here
    key = subprocess.run([*api.cli, "api", "create-key", "--name", "box-1", "--role", "edge", "--box", "box-1"],
                         env=api.env, cwd=api.workdir, check=True, capture_output=True, text=True).stdout.strip()
    config = EdgeConfig.model_validate({"api": {"url": api.url, "key": key, "box_id": "box-1", "heartbeat_s": 30},
                                        "cameras": [{"name": "c1", "url": "rtsp://cam/1"}]})
    health = {"pending_events": 0, "cameras": {"c1": {"state": "streaming", "frames_analysed": 1,
                                                      "corrupt_packets": 0, "last_frame_at": time.time()}}}
    with api:
        sender = HeartbeatSender(config, lambda: health, lambda: (ModelInfo(name="m", version="1"), None))
        ports: list[int] = []
        post = sender.client.post

        def post_noting_the_port(*args, **kwargs) -> httpx.Response:
            response = post(*args, **kwargs)
            ports.append(response.extensions["network_stream"].get_extra_info("client_addr")[1])
            return response

        sender.client.post = post_noting_the_port  # type: ignore[method-assign]
        try:
            assert sender.beat() == 200
            time.sleep(IDLE_S)
            assert sender.beat() == 200
        finally:
            sender.stop()
    assert len(ports) == 2 and ports[0] == ports[1], ports
