"""`streetwatch model push models/X`: send a published model to the API, which keeps it in its
evidence store for the boxes (api/model_registry.py); `streetwatch model assign` says which
boxes run it, and `streetwatch model unassign` withdraws an assignment (a canary).

The push declares the manifest and each file with its size and sha256, then uploads the files
the API does not have yet, one request each; the API stores a file only if it arrives as
declared, so a push broken off half-way is simply run again. Exports the manifest names but
the folder lacks (the OpenVINO IR is not kept in git) are left out of the pushed manifest:
boxes then run the ONNX graph, as they would here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from vision.manifest import load_manifest
from vision.yaml_file import read_yaml

DEFAULT_API_URL = "http://127.0.0.1:8000"


class PushError(RuntimeError):
    """The API refused, or could not be reached; the message says why."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files(model_dir: Path) -> tuple[str, dict[str, Path], list[str]]:
    """(manifest text to push, {path in the model: file}, exports left out as missing)."""
    manifest = load_manifest(model_dir)  # refuses here what the box could not load either
    folder = manifest.path or model_dir
    raw: dict[str, Any] = read_yaml(folder / "manifest.yaml", ValueError)
    files = {manifest.weights: manifest.weights_path}
    left_out = []
    for fmt, rel in dict(manifest.exports).items():
        path = (folder / rel).resolve()
        extra = [path.with_suffix(".bin")] if fmt == "openvino" and path.suffix == ".xml" else []
        if not path.is_file() or not all(p.is_file() for p in extra):
            left_out.append(fmt)
            continue
        files[rel] = path
        for p in extra:
            files[str(Path(rel).with_suffix(".bin"))] = p
    text = (folder / "manifest.yaml").read_text()
    if left_out:
        raw["exports"] = {k: v for k, v in (raw.get("exports") or {}).items() if k not in left_out}
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    return text, files, left_out


def _client(api_url: str | None, key: str | None) -> httpx.Client:
    key = key or os.environ.get("STREETWATCH_ADMIN_KEY")
    if not key:
        raise PushError("an admin key is needed: --key or STREETWATCH_ADMIN_KEY")
    url = api_url or os.environ.get("STREETWATCH_API_URL") or DEFAULT_API_URL
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def _refused(resp: httpx.Response) -> PushError:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = resp.text[:300]
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        detail = f"{'.'.join(str(p) for p in first.get('loc', []))}: {first.get('msg')}"
    return PushError(f"{resp.status_code} from {resp.request.url}: {detail}")


def push_model(model_dir: Path, api_url: str | None = None, key: str | None = None,
               client: httpx.Client | None = None) -> dict[str, Any]:
    """Push a model folder; the API's last answer (status `ready` when every file arrived)."""
    text, files, _ = model_files(Path(model_dir))
    declared = [{"path": rel, "sha256": sha256_of(p), "size": p.stat().st_size} for rel, p in files.items()]
    own = client is None
    client = client or _client(api_url, key)
    try:
        resp = client.post("/api/v1/models", json={"manifest": text, "files": declared})
        if resp.status_code not in (200, 201):
            raise _refused(resp)
        answer = resp.json()
        for rel in answer["missing"]:
            with open(files[rel], "rb") as f:  # streamed: a model file may be hundreds of MB
                put = client.put(f"/api/v1/models/{answer['name']}/{answer['version']}/files/{rel}", content=f,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Length": str(files[rel].stat().st_size)})
            if put.status_code != 200:
                raise _refused(put)
            answer = put.json()
        return answer
    except httpx.HTTPError as exc:
        raise PushError(f"API unreachable: {exc.__class__.__name__}: {exc}") from exc
    finally:
        if own:
            client.close()


def assign_model(name: str, version: str, boxes: list[str] | None, api_url: str | None = None,
                 key: str | None = None) -> dict[str, Any]:
    with _client(api_url, key) as client:
        body: dict[str, Any] = {"name": name, "version": version}
        if boxes:
            body["boxes"] = boxes
        try:
            resp = client.put("/api/v1/models/assignment", json=body)
        except httpx.HTTPError as exc:
            raise PushError(f"API unreachable: {exc.__class__.__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise _refused(resp)
        return resp.json()


def unassign_model(boxes: list[str] | None, api_url: str | None = None, key: str | None = None,
                   client: httpx.Client | None = None) -> dict[str, Any]:
    """Withdraw the named boxes' own assignments (each must have one), or with None the every-box
    one; the assignments that remain."""
    with contextlib.nullcontext(client) if client is not None else _client(api_url, key) as client:
        answer: dict[str, Any] = {}
        for path in [f"/api/v1/models/assignment/{b}" for b in boxes] if boxes else ["/api/v1/models/assignment"]:
            try:
                resp = client.delete(path)
            except httpx.HTTPError as exc:
                raise PushError(f"API unreachable: {exc.__class__.__name__}: {exc}") from exc
            if resp.status_code != 200:
                raise _refused(resp)
            answer = resp.json()
        return answer


def _print_push(args: Any) -> int:
    try:
        answer = push_model(Path(args.model_dir), args.api_url, args.key)
    except PushError as exc:
        print(f"streetwatch: model push: {exc}", file=sys.stderr)
        return 1
    size = sum(f["size"] for f in answer["files"])
    print(f"pushed {answer['name']} v{answer['version']}: {len(answer['files'])} files, {size / 1e6:.1f} MB, "
          f"{answer['status']}")
    for f in answer["files"]:
        print(f"  {f['path']}  {f['size']} bytes  sha256 {f['sha256']}")
    print(f"assign it to a canary box first: streetwatch model assign {answer['name']} {answer['version']} --box BOX")
    return 0


def _print_assign(args: Any) -> int:
    try:
        answer = assign_model(args.name, args.version, args.box, args.api_url, args.key)
    except PushError as exc:
        print(f"streetwatch: model assign: {exc}", file=sys.stderr)
        return 1
    return _print_assignments(answer)


def _print_unassign(args: Any) -> int:
    if bool(args.box) == args.all:
        print("streetwatch: model unassign: name the boxes (--box B, repeatable) or --all (the every-box assignment)",
              file=sys.stderr)
        return 2
    try:
        answer = unassign_model(None if args.all else args.box, args.api_url, args.key)
    except PushError as exc:
        print(f"streetwatch: model unassign: {exc}", file=sys.stderr)
        return 1
    print(f"withdrawn: {'every box' if args.all else ', '.join(args.box)}; what remains:")
    return _print_assignments(answer)


def _print_assignments(answer: dict[str, Any]) -> int:
    every = answer["all"]
    print(f"every box: {every['name']} v{every['version']}" if every else "every box: its own model (none assigned)")
    for box, ref in answer["boxes"].items():
        print(f"  {box}: {ref['name']} v{ref['version']}")
    return 0


def add_push_commands(model: Any) -> None:
    """`model push`, `model assign` and `model unassign` under the CLI's `model` commands."""
    def api_options(s: Any) -> None:
        s.add_argument("--api-url", help=f"the API (default $STREETWATCH_API_URL, else {DEFAULT_API_URL})")
        s.add_argument("--key", help="an admin key (default $STREETWATCH_ADMIN_KEY, which keeps it out of ps)")

    s = model.add_parser("push", help="upload a published model (weights, exports, manifest) to the API for the boxes")
    s.add_argument("model_dir", help="models/NAME with manifest.yaml")
    api_options(s)
    s.set_defaults(func=_print_push)
    s = model.add_parser("assign", help="which boxes run a pushed model: --box B (a canary, repeatable) or every box")
    s.add_argument("name")
    s.add_argument("version")
    s.add_argument("--box", action="append", help="only this box (repeatable); without: every box")
    api_options(s)
    s.set_defaults(func=_print_assign)
    s = model.add_parser("unassign", help="withdraw an assignment: --box B (a canary, repeatable) or --all; the box "
                                          "runs the every-box assignment again, else its YAML's model")
    s.add_argument("--box", action="append", help="withdraw this box's own assignment (repeatable)")
    s.add_argument("--all", action="store_true", help="withdraw the every-box assignment (per-box ones stay)")
    api_options(s)
    s.set_defaults(func=_print_unassign)
