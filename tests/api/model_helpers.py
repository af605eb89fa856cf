"""Builders for model rollout tests: a small fake model (the API never opens the files)."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml
from fastapi.testclient import TestClient

MANIFEST: dict[str, Any] = {
    "name": "sw-test", "version": "2", "task": "detect", "weights": "sw-test.pt", "imgsz": 320,
    "classes": {0: {"name": "vending", "issue_type": "street_vending", "threshold": 0.4},
                1: {"name": "bin", "issue_type": None, "threshold": 0.3}},
    "exports": {"onnx": "sw-test.onnx"}}
FILES = {"sw-test.pt": b"pt-weights " * 100, "sw-test.onnx": b"onnx-graph " * 300}


def described(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for p, d in files.items()]


def push_body(manifest: dict[str, Any] | None = None, files: dict[str, bytes] | None = None) -> dict[str, Any]:
    return {"manifest": yaml.safe_dump(manifest or MANIFEST), "files": described(files or FILES)}


def push(client: TestClient, manifest: dict[str, Any] | None = None, files: dict[str, bytes] | None = None,
         sent: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Declare, then upload every file (`sent` replaces what goes over the wire); the last answer."""
    files = files or FILES
    manifest = manifest or MANIFEST
    resp = client.post("/api/v1/models", json=push_body(manifest, files))
    assert resp.status_code in (200, 201), resp.text
    answer, refused = resp.json(), None
    for path in answer["missing"]:
        data = (sent or {}).get(path, files[path])
        up = client.put(f"/api/v1/models/{manifest['name']}/{manifest['version']}/files/{path}", content=data,
                        headers={"Content-Type": "application/octet-stream"})
        if up.status_code == 200:
            answer = up.json()
        else:
            refused = up.json()
    return {**answer, "refused": refused} if refused is not None else answer
