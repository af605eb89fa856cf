"""The review API as a real process (`streetwatch api serve`) that tests can stop and restart
on the same port and database, as an edge box sees an API that goes away and comes back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from streams.camera_server import free_port
from tests.support.servers import wait_until_answers

EDGE_KEY = "edge-secret"


class ApiProcess:
    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "STREETWATCH_DATABASE_URL": f"sqlite:///{self.workdir / 'api.db'}",
                    "STREETWATCH_API_KEY": EDGE_KEY}
        for name in ("STREETWATCH_S3_ENDPOINT", "STREETWATCH_S3_ACCESS_KEY", "STREETWATCH_S3_SECRET_KEY"):
            self.env.pop(name, None)  # evidence in a local folder under workdir
        self.cli = [sys.executable, "-m", "streetwatch_cli"]
        subprocess.run([*self.cli, "api", "migrate"], env=self.env, cwd=self.workdir, check=True, capture_output=True)
        key = subprocess.run([*self.cli, "api", "create-key", "--name", "test-reader", "--role", "reviewer"],
                             env=self.env, cwd=self.workdir, check=True, capture_output=True, text=True).stdout.strip()
        self.reader = {"Authorization": f"Bearer {key}"}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ApiProcess":
        self.proc = subprocess.Popen([*self.cli, "api", "serve", "--port", str(self.port), "--no-access-log"],
                                     env=self.env, cwd=self.workdir, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until_answers(f"{self.url}/healthz", self.proc, timeout)
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def orders(self) -> list[dict]:
        resp = httpx.get(f"{self.url}/api/v1/orders", params={"limit": 500, "sort": "oldest"}, headers=self.reader,
                         timeout=10)
        resp.raise_for_status()
        return resp.json()["data"]

    def event_ids(self) -> list[str]:
        """Every event the API holds (an id twice would mean a duplicate), oldest order first."""
        out = []
        for order in self.orders():
            detail = httpx.get(f"{self.url}/api/v1/orders/{order['id']}", headers=self.reader, timeout=10).json()
            out += [str(e["event_id"]) for e in detail["events"]]
        return out

    def __enter__(self) -> "ApiProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
