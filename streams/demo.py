"""`streetwatch demo`: a synthetic street camera, the edge, S3 and the API, all on 127.0.0.1.

Starts (and on Ctrl-C stops) everything it needs: an RTSP server looping a rendered
street clip, a SeaweedFS S3 server for evidence, the API under uvicorn with a fresh
SQLite database, and the edge pipeline with the bundled model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

log = logging.getLogger("streetwatch.demo")

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = Path("var/demo")
MODEL = ROOT / "models" / "streetwatch-v5"  # the deployed model
# Demo confirmation times are short so the orders show up within a minute; a real street
# config waits minutes (a stall parked for 30 s is not yet street vending).
DEMO_ISSUES = {t: {"confirm_seconds": 5, "min_hits": 3, "clear_seconds": 120}
               for t in ("street_vending", "clutter", "flooding")}


def _wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")


def _print_new_orders(base: str, key: str, seen: set[int], started: float) -> None:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        orders = httpx.get(f"{base}/api/v1/orders", headers={"Authorization": f"Bearer {key}"}, timeout=5).json()["data"]
        for order in sorted(orders, key=lambda o: o["id"]):
            if order["id"] not in seen:
                seen.add(order["id"])
                print(f"  [{time.monotonic() - started:5.1f}s] order #{order['id']}: {order['issue_type']} on camera "
                      f"{order['camera']}  → {base}/api/v1/orders/{order['id']}", flush=True)


def run_demo(port: int = 8000, seconds: float = 0) -> int:
    from api.local_s3 import LocalS3Server
    from datasets.synth.clip import render_clip
    from streams.camera_server import RtspCameraServer
    from streams.config import EdgeConfig
    from streams.pipeline import EdgePipeline

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    # Before minutes of setup: the API would exit at once on a taken port (code 3, no reason).
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(exc.errno, f"port {port} is in use ({exc.strerror}); pick another with --port") from None

    # Ctrl-C, and `kill`, both end in the same orderly shutdown of everything started below.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    started = time.monotonic()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    clip = DEMO_DIR / "street.mp4"
    if not clip.exists():
        render_clip(clip)
    db = DEMO_DIR / "streetwatch.db"
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(DEMO_DIR / "evidence", ignore_errors=True)
    shutil.rmtree(DEMO_DIR / "outbox", ignore_errors=True)  # events of an earlier demo's database

    with contextlib.ExitStack() as stack:
        cameras = stack.enter_context(RtspCameraServer({"street-1": clip}))
        s3 = stack.enter_context(LocalS3Server(data_dir=DEMO_DIR / "s3"))
        env = {**os.environ,
               "STREETWATCH_DATABASE_URL": f"sqlite:///{db}",
               "STREETWATCH_S3_ENDPOINT": s3.endpoint, "STREETWATCH_S3_ACCESS_KEY": s3.access_key,
               "STREETWATCH_S3_SECRET_KEY": s3.secret_key, "STREETWATCH_S3_BUCKET": "streetwatch-evidence"}
        cli = [sys.executable, "-m", "streetwatch_cli"]
        subprocess.run([*cli, "api", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        keys = {role: subprocess.run([*cli, "api", "create-key", "--name", f"demo-{role}", "--role", role], env=env,
                                     check=True, capture_output=True, text=True).stdout.strip()
                for role in ("edge", "admin")}
        api = subprocess.Popen([*cli, "api", "serve", "--port", str(port), "--no-access-log"], env=env, start_new_session=True)
        stack.callback(lambda: (api.send_signal(signal.SIGINT), api.wait(10)))
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/healthz", 30, api)

        config = EdgeConfig.model_validate({
            "api": {"url": base, "key": keys["edge"]}, "model": str(MODEL), "sample_interval_s": 1.0, "issues": DEMO_ISSUES,
            "outbox": {"path": str((DEMO_DIR / "outbox").resolve())},
            "cameras": [{"name": "street-1", "url": cameras.url("street-1"), "lat": 31.2304, "lon": 121.4737,
                         "grid_id": "grid-001"}],
        })
        (DEMO_DIR / "edge.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        edge = EdgePipeline(config)
        edge.start()
        stack.callback(edge.stop)
        print(f"""
Streetwatch demo is running ({time.monotonic() - started:.0f}s to start):
  camera     {cameras.url('street-1')}   (synthetic street, {clip})
  API docs   {base}/docs
  orders     {base}/api/v1/orders   (header 'Authorization: Bearer {keys['admin']}', an admin key)
  evidence   S3 bucket streetwatch-evidence on {s3.endpoint} (SeaweedFS)
  edge       config {DEMO_DIR / 'edge.yaml'}
Orders appear below as the edge confirms them (a stall at ~3 s, clutter at ~9 s, water at ~15 s
of the clip, each confirmed after {DEMO_ISSUES['clutter']['confirm_seconds']} s). Ctrl-C stops everything.
""", flush=True)
        seen: set[int] = set()
        try:
            while seconds <= 0 or time.monotonic() - started < seconds:
                time.sleep(2)
                _print_new_orders(base, keys["admin"], seen, started)
        except KeyboardInterrupt:
            print("\nstopping…", flush=True)
    return 0
