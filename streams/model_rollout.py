"""Model rollout on the box: fetch the model the API assigns, check it, load and warm it, then
switch the detector between two batches (EdgePipeline.switch_model).

The box learns its model from its config pull (streams/remote_config.py: the `model` of
`GET /api/v1/boxes/{box_id}/config`), so a box that was offline during a rollout, or
restarted without the API (the config is cached), catches up by itself. The files come
through time-limited links the API hands to edge keys (`GET /api/v1/models/{name}/{version}/links`)
and are written under the box's state folder (`<outbox.path>/models/<name>/<version>/`), never
into models/. A file is kept under its name only once its size and sha256 are the declared
ones. Whatever goes wrong (a download that fails, a checksum mismatch, a full disk, a model
that does not load or warm up) leaves the box on the model it runs and says why in its
heartbeat (`model_error`): a download is retried every `retry_s`, a model that failed to load
only when the assignment changes. An assignment withdrawn (none left for the box) takes it back
to the model it started on, its YAML's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np

from api.model_schemas import AssignedModel
from streams.heartbeat import file_sha256
from vision.detector import Detector
from vision.manifest import ModelManifest, load_manifest

log = logging.getLogger("streetwatch.edge")

Loader = Callable[[ModelManifest], list[Detector]]


class RolloutError(RuntimeError):
    """Why the box is not on its assigned model (the heartbeat's model_error)."""


def _fsync_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


class ModelRollout:
    def __init__(self, pipeline: Any, client: httpx.Client, folder: Path, retry_s: float = 60.0,
                 loader: Loader | None = None, downloads: httpx.Client | None = None):
        self.pipeline, self.client, self.folder, self.retry_s = pipeline, client, Path(folder), retry_s
        # The model the box started on (its YAML's): where it goes back when its assignment is withdrawn.
        self.home: ModelManifest = pipeline.manifest
        self.loader = loader or self._load_copies
        # Links may point at S3 (presigned: the API key must not go along) or at the API itself.
        self.downloads = downloads or httpx.Client(timeout=client.timeout, follow_redirects=True)
        self.target: AssignedModel | None = None
        self.error: str | None = None
        self.switches = 0
        self._failed: set[tuple[str, str, str]] = set()  # (name, version, weights sha256) that did not load
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- from the config poll and the heartbeat ----------------------------------------------
    def assign(self, model: dict | None) -> None:
        """The `model` of the box's config (None: none assigned, or withdrawn: the box goes back
        to the model it started on, its YAML's, if a rollout switched it away)."""
        target = AssignedModel.model_validate(model) if model else None
        with self._lock:
            if target != self.target:
                self.target = target
                self._failed.clear()  # a new assignment gets a fresh try, whatever failed before
                if target is None:
                    self.error = None
            self._wake.set()

    # -- the work --------------------------------------------------------------------------
    def step(self) -> bool:
        """One attempt to run the assigned model; True if the box switched to it."""
        target = self.target
        if target is None:
            return self._go_home()
        if self._runs(target):
            self.error = None
            return False
        key = (target.name, target.version, target.weights_sha256)
        if key in self._failed or getattr(self.pipeline, "scheduler", None) is None:
            return False  # failed to load (reported; waits for a new assignment), or not started yet
        running = self.pipeline.manifest
        try:
            folder = self.fetch(target)
            manifest, detectors = self.prepare(target, folder)
        except RolloutError as exc:
            # The heartbeat takes 2000 characters of it: the reason's end is what matters least.
            self.error = f"{target.name} v{target.version}: {str(exc)[:1500]}; still running {running.name} " \
                         f"v{running.version}"
            log.error("model rollout: %s", self.error)
            return False
        try:
            self.pipeline.switch_model(manifest, detectors)
        except TimeoutError as exc:
            self.error = f"{target.name} v{target.version}: not switched ({exc}); still running {running.name} " \
                         f"v{running.version}"
            log.error("model rollout: %s", self.error)
            return False
        self.error = None
        self.switches += 1
        self._tidy(keep={folder, Path(running.path or "")})
        return True

    def _go_home(self) -> bool:
        """No assignment (an admin withdrew it): back to the model the box started on, if the
        rollout switched it away; True if it switched."""
        home, running = self.home, self.pipeline.manifest
        if not self.switches or running is home or getattr(self.pipeline, "scheduler", None) is None:
            self.error = None
            return False
        try:
            detectors = self.loader(home)
            self._warm(detectors)
            self.pipeline.switch_model(home, detectors)
        except Exception as exc:  # the box goes on with the model it runs, and says why
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]
            self.error = f"assignment withdrawn, but {home.name} v{home.version} (the YAML's model) did not come " \
                         f"back: {exc.__class__.__name__}: {first}; still running {running.name} v{running.version}"
            log.error("model rollout: %s", self.error)
            return False
        self.error = None
        self.switches += 1
        self._tidy(keep={Path(running.path or "")})
        log.info("model rollout: assignment withdrawn, back on %s v%s", home.name, home.version)
        return True

    def _runs(self, target: AssignedModel) -> bool:
        m = self.pipeline.manifest
        return (m.name, str(m.version)) == (target.name, target.version) and \
            file_sha256(m.weights_path) == target.weights_sha256

    def fetch(self, target: AssignedModel) -> Path:
        """The model's folder with every file whole (downloading what is missing)."""
        folder = self.folder / target.name / target.version
        wanted = [f for f in target.files if not self._whole(folder / f.path, f.size, f.sha256)]
        if not wanted:
            return folder
        resp = self._get_links(target)
        links = {f["path"]: f["url"] for f in resp["files"]}
        for f in wanted:
            if f.path not in links:
                raise RolloutError(f"the API offers no link for {f.path}")
            self._download(links[f.path], folder / f.path, f.size, f.sha256, f.path)
        return folder

    def _get_links(self, target: AssignedModel) -> dict:
        path = f"/api/v1/models/{target.name}/{target.version}/links"
        try:
            resp = self.client.get(path)
        except httpx.HTTPError as exc:
            raise RolloutError(f"API unreachable for the download links ({exc.__class__.__name__})") from exc
        if resp.status_code != 200:
            raise RolloutError(f"{resp.status_code} from {path}: {resp.text[:200]}")
        return resp.json()

    @staticmethod
    def _whole(path: Path, size: int, sha256: str) -> bool:
        try:
            return path.stat().st_size == size and file_sha256.__wrapped__(path) == sha256
        except OSError:
            return False

    def _download(self, url: str, final: Path, size: int, sha256: str, name: str) -> None:
        part = final.with_name(final.name + ".part")
        client = self.client if url.startswith("/") else self.downloads  # the API's own signed route
        digest, got = hashlib.sha256(), 0
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with client.stream("GET", url) as resp, open(part, "wb") as out:
                if resp.status_code != 200:
                    raise RolloutError(f"download of {name} answered {resp.status_code}")
                for chunk in resp.iter_bytes(1 << 20):
                    got += len(chunk)
                    if got > size:
                        raise RolloutError(f"{name}: more than the declared {size} bytes arrived")
                    digest.update(chunk)
                    out.write(chunk)
            if got != size:
                raise RolloutError(f"{name}: {got} bytes arrived, {size} declared")
            if digest.hexdigest() != sha256:
                raise RolloutError(f"{name}: sha256 mismatch (got {digest.hexdigest()}, declared {sha256})")
            _fsync_replace(part, final)
        except httpx.HTTPError as exc:
            raise RolloutError(f"download of {name} failed ({exc.__class__.__name__}: {exc})") from exc
        except OSError as exc:  # a full disk, a read-only state folder
            raise RolloutError(f"cannot write {final}: {exc.strerror or exc}") from exc
        finally:
            try:
                part.unlink(missing_ok=True)
            except OSError:  # its folder could not be made either
                pass

    def prepare(self, target: AssignedModel, folder: Path) -> tuple[ModelManifest, list[Detector]]:
        """Load and warm the model beside the running one; RolloutError if it cannot run."""
        try:
            manifest = load_manifest(folder)
            if (manifest.name, str(manifest.version)) != (target.name, target.version):
                raise RolloutError(f"its manifest says {manifest.name} v{manifest.version}")
            detectors = self.loader(manifest)
            self._warm(detectors)
        except RolloutError as exc:
            self._failed.add((target.name, target.version, target.weights_sha256))
            raise RolloutError(f"fails to load or warm up: {exc}") from exc
        except Exception as exc:  # whatever the runtime raises for a graph it cannot run
            self._failed.add((target.name, target.version, target.weights_sha256))
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]
            raise RolloutError(f"fails to load or warm up: {exc.__class__.__name__}: {first}") from exc
        return manifest, detectors

    @staticmethod
    def _warm(detectors: list[Detector]) -> None:
        frame = np.full((360, 640, 3), 114, np.uint8)  # the first call builds what the runtime builds lazily
        for detector in detectors:
            if len(detector.detect_batch([frame])) != 1:
                raise RolloutError("its warm-up run did not answer one result per frame")

    def _load_copies(self, manifest: ModelManifest) -> list[Detector]:
        from vision.detector import load_detector

        cfg = self.pipeline.config
        return [load_detector(manifest, cfg.detector, cfg.detector_threads)
                for _ in range(len(self.pipeline.scheduler.detectors))]

    def _tidy(self, keep: set[Path]) -> None:
        """Drop downloaded versions other than the one running now and the one before it."""
        keep = {p.resolve() for p in keep if str(p)}
        for name_dir in self.folder.glob("*"):
            for version_dir in name_dir.glob("*"):
                if version_dir.is_dir() and version_dir.resolve() not in keep:
                    shutil.rmtree(version_dir, ignore_errors=True)

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-rollout", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # The fleet link starts before the inference workers do; switching needs them.
        while getattr(self.pipeline, "scheduler", None) is None and not self._stop.wait(0.2):
            pass
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.step()
            except Exception:  # the box goes on with the model it runs, whatever happened here
                log.exception("model rollout failed")
            self._wake.wait(self.retry_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.downloads.close()
