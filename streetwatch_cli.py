"""`streetwatch` command line: the edge box, the API server, the demo, data and training.

Heavy imports (torch, ultralytics, PyAV) happen inside the commands that need them, so
`streetwatch --help` and the API commands start in a moment.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from api.keepalive import SERVER_KEEP_ALIVE_S


def _edge(args: argparse.Namespace) -> int:
    from streams.config import load_config
    from streams.pipeline import EdgePipeline

    config = load_config(args.config)
    EdgePipeline(config).run_forever()
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from streams.config import load_config

    from vision.manifest import load_manifest

    config = load_config(args.config)
    manifest = load_manifest(config.model)  # what `edge` loads first (no torch needed)
    enabled = sum(c.enabled for c in config.cameras)
    if not enabled:
        print(f"streetwatch: {args.config}: every camera is disabled (enabled: false)", file=sys.stderr)
        return 2
    print(f"{args.config}: ok ({enabled} camera(s), model {manifest.name} v{manifest.version} at {config.model})")
    return 0


def _api_migrate(args: argparse.Namespace) -> int:
    from api.db import upgrade_database
    from api.settings import get_settings

    url = get_settings().database_url
    upgrade_database(url)
    print(f"database at head: {url}")
    return 0


def _api_create_key(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from api.auth import create_key
    from api.db import check_migrated, get_engine
    from api.models import Role
    from api.settings import get_settings

    url = get_settings().database_url
    engine = get_engine(url)
    check_migrated(engine, url)
    with Session(engine) as session:
        try:
            key = create_key(session, args.name, Role(args.role), args.worker_id, args.box)
        except ValueError as exc:
            print(f"streetwatch api create-key: {exc}", file=sys.stderr)
            return 2
    print(key)
    return 0


def _export_reviews(args: argparse.Namespace) -> int:
    from datetime import datetime

    from sqlmodel import Session

    from api.db import check_migrated, get_engine
    from api.evidence_store import make_store
    from api.review_export import export_reviews
    from api.schemas import to_utc
    from api.settings import get_settings

    try:
        since = to_utc(datetime.fromisoformat(args.since)) if args.since else None
    except ValueError:
        print(f"streetwatch dataset export-reviews: --since {args.since!r} is not an ISO 8601 date", file=sys.stderr)
        return 2
    settings = get_settings()
    engine = get_engine(settings.database_url)
    check_migrated(engine, settings.database_url)
    with Session(engine) as session:
        s = export_reviews(session, make_store(settings), Path(args.out), since)
    print(f"{args.out}: {s.new_images} new image(s), {s.relabelled} relabelled, {s.duplicates_skipped} near-duplicate "
          f"frame(s) skipped, {s.unreviewed_orders} unreviewed order(s) left out; {s.total_images} in all")
    return 0


def _api_serve(args: argparse.Namespace) -> int:
    if not args.no_huge_pages:
        from api.huge_pages import serve_with_huge_pages

        serve_with_huge_pages(args.workers)  # first: with one worker it may re-execute this process

    import uvicorn

    from api import serve
    from api.db import check_migrated, get_engine
    from api.settings import get_settings

    if args.migrate:
        _api_migrate(args)
    # Each worker checks too, but a worker that refuses to start is restarted by the
    # supervisor: with --workers 2 an unmigrated database printed its line over and over.
    url = get_settings().database_url
    check_migrated(get_engine(url), url)
    # proxy_headers off: uvicorn would take X-Forwarded-For from 127.0.0.1 as the client before
    # the API sees the request; the API decides by STREETWATCH_TRUSTED_PROXIES (api/client_address.py).
    serve.run(uvicorn.Config("api.main:create_app", factory=True, host=args.host, port=args.port,
                             workers=args.workers, access_log=not args.no_access_log, proxy_headers=False,
                             timeout_keep_alive=args.keep_alive))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(port=args.port, seconds=args.seconds)


def _synth_clip(args: argparse.Namespace) -> int:
    from datasets.synth.clip import render_clip

    kwargs = {"issues": ()} if args.negatives_only else {}
    out = render_clip(Path(args.out), seconds=args.seconds, width=args.width, height=args.height, seed=args.seed,
                      **kwargs)
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def _synth_dataset(args: argparse.Namespace) -> int:
    from datasets.synth.generate import build_synthetic_dataset

    data = build_synthetic_dataset(Path(args.out), args.train, args.val, seed=args.seed)
    print(f"wrote {data}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from vision.publish import publish

    card = publish(Path(args.run), Path(args.model_dir), Path(args.data), [Path(c) for c in args.clip],
                   card=not args.no_card)
    print(card.read_text())
    return 0


def _model_init(args: argparse.Namespace) -> int:
    from vision.yolov5_import import Yolov5ImportError, init_from_yolov5

    try:
        report = init_from_yolov5(Path(args.from_yolov5), Path(args.out), seed=args.seed)
    except Yolov5ImportError as exc:
        print(f"streetwatch: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


def _model_export(args: argparse.Namespace) -> int:
    from vision.export import export_model

    for fmt, path in export_model(Path(args.weights), imgsz=args.imgsz, openvino=not args.no_openvino).items():
        print(f"{fmt:9s} {path}")
    return 0


def _dataset_build(args: argparse.Namespace) -> int:
    from datasets.build import build_dataset
    from datasets.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    data, summary = build_dataset(recipe, Path(args.out or f"var/datasets/{recipe.name}"))
    print(summary.table())
    print(f"wrote {data}")
    return 0


def _key_name(text: str) -> str:
    if not text.strip() or "\x00" in text or len(text) > 100:
        raise argparse.ArgumentTypeError("give the key a name of 1 to 100 characters: who or what holds it")
    return text


def _whole_number(low: int, high: int | None, what: str):
    """An argparse type: a whole number from `low` to `high` (no upper bound if None)."""
    def parse(text: str) -> int:
        if not text.isdecimal() or int(text) < low or high is not None and int(text) > high:
            raise argparse.ArgumentTypeError(f"{text!r}: {what}")
        return int(text)
    return parse


_port = _whole_number(1, 65535, "a TCP port is a number from 1 to 65535")
_at_least_one = _whole_number(1, None, "expected a whole number of at least 1")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streetwatch", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("edge", help="run the edge pipeline on the cameras of a config file")
    s.add_argument("--config", "-c", required=True)
    s.set_defaults(func=_edge)

    s = sub.add_parser("check-config", help="validate a config file and exit")
    s.add_argument("config")
    s.set_defaults(func=_check_config)

    api = sub.add_parser("api", help="the order review API").add_subparsers(dest="api_command", required=True)
    s = api.add_parser("migrate", help="create or upgrade the database (Alembic upgrade head)")
    s.set_defaults(func=_api_migrate)
    s = api.add_parser("create-key", help="create an API key with a role and print it (shown once)")
    s.add_argument("--name", required=True, type=_key_name, help="who or what holds the key, e.g. 'edge-box-3' or 'li.wei'")
    s.add_argument("--role", required=True, choices=["edge", "reviewer", "worker", "admin", "open311_client"])
    s.add_argument("--worker-id", type=int, help="the worker a worker key belongs to")
    s.add_argument("--box", help="the edge box an edge key belongs to: it may speak only for that box's cameras")
    s.set_defaults(func=_api_create_key)
    s = api.add_parser("serve", help="serve the API with uvicorn")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8000)
    s.add_argument("--workers", type=_at_least_one, default=1)
    s.add_argument("--migrate", action="store_true", help="upgrade the database first")
    s.add_argument("--no-access-log", action="store_true", help="do not log every request")
    s.add_argument("--no-huge-pages", action="store_true",
                   help="keep the workers' Python heap on 4 KiB pages (default: on transparent huge pages where "
                        "the kernel offers them, which halved a heartbeat's CPU after idle here; api/huge_pages.py)")
    s.add_argument("--keep-alive", type=_at_least_one, default=SERVER_KEEP_ALIVE_S, metavar="SECONDS",
                   help=f"close a connection idle this long (default {SERVER_KEEP_ALIVE_S}: longer than a box's "
                        "heartbeat interval, so its heartbeats share one connection)")
    s.set_defaults(func=_api_serve)

    s = sub.add_parser("demo", help="synthetic camera + edge + API + S3 on this machine")
    s.add_argument("--port", type=_port, default=8000)
    s.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    s.set_defaults(func=_demo)

    synth = sub.add_parser("synth", help="synthetic street scenes").add_subparsers(dest="synth_command", required=True)
    s = synth.add_parser("clip", help="render an H.264 clip with a ground-truth timeline")
    s.add_argument("out")
    s.add_argument("--seconds", type=float, default=40)
    s.add_argument("--width", type=int, default=960)
    s.add_argument("--height", type=int, default=540)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--negatives-only", action="store_true", help="no issues: parked cars, bins, pedestrians")
    s.set_defaults(func=_synth_clip)
    s = synth.add_parser("dataset", help="render a YOLO dataset of random scenes")
    s.add_argument("out")
    s.add_argument("--train", type=int, default=1500)
    s.add_argument("--val", type=int, default=200)
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(func=_synth_dataset)

    dataset = sub.add_parser("dataset", help="training data").add_subparsers(dest="dataset_command", required=True)
    s = dataset.add_parser("export-reviews", help="reviewed orders → YOLO folder (labels, hard negatives, provenance)")
    s.add_argument("--out", required=True, help="output folder; exporting to it again adds what is new")
    s.add_argument("--since", help="orders changed at or after this ISO 8601 date")
    s.set_defaults(func=_export_reviews)
    s = dataset.add_parser("build", help="build an ultralytics dataset folder from a recipe")
    s.add_argument("recipe")
    s.add_argument("--out", help="output folder (default var/datasets/<recipe name>)")
    s.set_defaults(func=_dataset_build)

    model = sub.add_parser("model", help="model folders").add_subparsers(dest="model_command", required=True)
    s = model.add_parser("publish", help="copy a run's best weights into a model folder, set thresholds, write its card")
    s.add_argument("run", help="training run folder (runs/train/NAME)")
    s.add_argument("model_dir", help="models/NAME with manifest.yaml")
    s.add_argument("--data", required=True, help="data.yaml whose validation split sets the thresholds")
    s.add_argument("--clip", action="append", default=[], help="rendered clip(s) for the event-level check")
    s.add_argument("--no-card", action="store_true", help="keep the model's README (written from eval reports)")
    s.set_defaults(func=_publish)

    s = model.add_parser("init", help="starting weights for training from an official YOLOv5 release checkpoint")
    s.add_argument("--from-yolov5", required=True, metavar="PT",
                   help="a YOLOv5 release file, e.g. yolov5n.pt (v6.x/v7.0, COCO); backbone and neck are kept")
    s.add_argument("out", help="the ultralytics .pt to write (train --model OUT)")
    s.add_argument("--seed", type=int, default=0, help="seed of the fresh detection head")
    s.set_defaults(func=_model_init)

    s = model.add_parser("export", help="export .pt weights to ONNX and OpenVINO (f32) beside them; updates the manifest")
    s.add_argument("weights", help="a .pt file, or a model folder whose manifest names one")
    s.add_argument("--imgsz", type=int, help="input size (default: the manifest's, else 640)")
    s.add_argument("--no-openvino", action="store_true", help="ONNX only")
    s.set_defaults(func=_model_export)

    from vision.model_push import add_push_commands  # (httpx only)

    add_push_commands(model)

    from benchmarks.cli import add_bench_commands  # (imports nothing heavy until a bench runs)

    add_bench_commands(sub, _whole_number)

    from streams.camera_cli import add_camera_commands  # (the ONVIF client loads when a probe runs)
    from vision.train_cli import add_training_commands

    add_camera_commands(sub)
    add_training_commands(sub, _at_least_one)

    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "alembic"):  # one line per request/plugin drowns the useful lines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from datasets.output import OutputInUse
    from datasets.recipe import RecipeError
    from datasets.yolo_labels import LabelError
    from streams.config import ConfigError
    from vision.manifest import ManifestError
    from vision.export import ExportError

    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return args.func(args)
    except (ConfigError, ManifestError, RecipeError, LabelError, ExportError, OutputInUse, FileNotFoundError) as exc:
        print(f"streetwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (OSError, UnicodeDecodeError, ValidationError, SQLAlchemyError) as exc:
        # The environment, not the code: a folder that is a file, a port in use, a file that
        # is not text, a STREETWATCH_* setting, a database that is not there. One line, as
        # for the errors above; the traceback with -v.
        if args.verbose:
            raise
        print(f"streetwatch: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: Exception) -> str:
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, ValidationError):
        if exc.title == "Settings":
            err = exc.errors()[0]
            return f"setting STREETWATCH_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
        from streams.config import first_error

        return f"{exc.title}: {first_error(exc)}"
    if isinstance(exc, SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"database: {reason[0] if reason else type(exc).__name__}"
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({exc})"
    return str(exc) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
