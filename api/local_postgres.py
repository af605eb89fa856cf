"""A throwaway PostgreSQL cluster (Debian's binaries, initdb + pg_ctl in a temp dir), for tests
and `streetwatch bench api` (like api/local_s3.py for S3).

    with ThrowawayPostgres() as url:   # postgresql+psycopg://postgres@127.0.0.1:PORT/streetwatch
        ...
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> Path:
    """The newest installed server's bin dir (/usr/lib/postgresql/<version>/bin)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        raise FileNotFoundError("PostgreSQL server binaries not found under /usr/lib/postgresql: "
                                "apt-get install postgresql")

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.parent.name))

    return Path(max(found, key=version)).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    def __init__(self, user: str = "postgres", database: str = "streetwatch"):
        self.user, self.database = user, database
        self.bin = pg_bin()
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="streetwatch-pg-"))
        self._started = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")

    def start(self) -> str:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = self.dir / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", self.user, "-A", "trust", "--no-sync",
                  "-E", "UTF8")
        # fsync off: a throwaway cluster needs speed, not durability.
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._started = True
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-t", "60",
                      "-l", str(self.dir / "log"), "start")
        except RuntimeError as exc:
            log = (self.dir / "log").read_text(errors="replace")[-1500:] if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{exc}\n{log}") from None
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database)
        return self.url

    def stop(self) -> None:
        if self._started:
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
            except RuntimeError:
                pass  # never started, or already gone
            self._started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
