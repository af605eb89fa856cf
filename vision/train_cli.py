"""`streetwatch train`, `eval` and `eval-clip`: making a model and measuring it (real and
synthetic figures apart, image-level figures on labelled photos, events on a rendered clip)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def _train(args: argparse.Namespace) -> int:
    from datasets.recipe import RecipeError
    from vision.train import train
    from vision.yaml_file import read_yaml

    data = Path(args.data)
    raw = read_yaml(data, RecipeError) if data.suffix in (".yaml", ".yml") else None
    if not isinstance(raw, dict) or not ("sources" in raw or {"train", "names"} <= raw.keys()):
        print(f"streetwatch: {data}: neither a dataset's data.yaml (train:, names:) nor a recipe (sources:)",
              file=sys.stderr)
        return 2
    if "sources" in raw:
        # a recipe: build its dataset first, unless this recipe was built from these very sources
        from datasets.build import build_dataset, is_built
        from datasets.recipe import load_recipe

        recipe = load_recipe(data)
        out = Path(f"var/datasets/{recipe.name}")
        if is_built(recipe, out):
            print(f"{out}: reusing the build (same recipe, sources unchanged)")
        else:
            print(f"{out}: building (a new recipe, or files in its sources changed)")
            print(build_dataset(recipe, out)[1].table())
        data = out / "data.yaml"
    else:
        from datasets.yolo_labels import names_of

        names_of(raw, data)  # ultralytics' own complaint about names is a traceback
    ood = None
    if args.ood:
        from vision.ood_val import OodSet

        if not args.ood_images:
            print("streetwatch: --ood needs --ood-images FOLDER (the photos its CSV names)", file=sys.stderr)
            return 2
        ood = OodSet(Path(args.ood), Path(args.ood_images))
        print(f"out-of-domain validation: {len(ood.rows())} photos of {args.ood} (split {ood.split})")
    best = train(data, model=args.model, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                 name=args.name, device=args.device, freeze=args.freeze, ood=ood, lr0=args.lr0)
    print(f"best weights: {best}")
    return 0


def _eval_clip(args: argparse.Namespace) -> int:
    from vision.clip_eval import evaluate_clip

    result = evaluate_clip(Path(args.model), Path(args.clip))
    for issue, delay in result.found.items():
        print(f"{issue:15s} {'missed' if delay is None else f'event {delay:.0f}s after it appeared'}")
    print(f"false events: {', '.join(result.false_events) or 'none'}")
    return 0 if result.ok else 1


def _eval(args: argparse.Namespace) -> int:
    from vision.evaluate import evaluate

    if args.data.endswith(".csv"):  # image-level labels of real photos (no boxes)
        from vision.evaluate import image_labels_report, image_level_on_labels, wrong_calls_picture

        if not args.images:
            print("streetwatch: eval on an image-label CSV needs --images FOLDER", file=sys.stderr)
            return 2
        result = image_level_on_labels(Path(args.model), Path(args.data), Path(args.images), args.issue,
                                       split=args.split, imgsz=args.imgsz)
        title = Path(args.data).stem + (f" ({args.split})" if args.split else "") + (f" at {args.imgsz} px" if args.imgsz else "")
        text = image_labels_report(result, title)
        out = Path(args.out or f"var/eval/{Path(args.model).name}-{Path(args.data).stem}{'-' + args.split if args.split else ''}{f'-{args.imgsz}px' if args.imgsz else ''}")
        out.mkdir(parents=True, exist_ok=True)
        if wrong_calls_picture(result, Path(args.images), out / "wrong.jpg"):
            text += "\n![wrong calls](wrong.jpg)\n"
        (out / "eval.md").write_text(text)
        print(text)
        print(f"wrote {out / 'eval.md'}")
        return 0
    report = evaluate(Path(args.model), Path(args.data), args.split or "val", Path(args.out) if args.out else None,
                      imgsz=args.imgsz)
    print(report.read_text())
    print(f"wrote {report}")
    return 0


def add_training_commands(sub: argparse._SubParsersAction, at_least_one: Callable[[str], int]) -> None:
    s = sub.add_parser("eval", help="mAP and image-level precision/recall, real and synthetic reported apart")
    s.add_argument("model", help="model folder with manifest.yaml")
    s.add_argument("data", help="data.yaml of a built dataset (sources.csv beside it tags real/synthetic), "
                                "or a CSV of image-level labels (file,clutter,note) with --images")
    s.add_argument("--split", choices=["train", "val", "test"],
                   help="data.yaml: the split (default val); CSV: only its rows of this split (default all)")
    s.add_argument("--images", help="folder of the photos an image-label CSV names")
    s.add_argument("--issue", default="clutter", choices=["street_vending", "clutter", "flooding"])
    s.add_argument("--imgsz", type=at_least_one,
                   help="run the model at this input size instead of its manifest's (accuracy vs edge speed)")
    s.add_argument("--out", help="report folder (default var/eval/...)")
    s.set_defaults(func=_eval)

    s = sub.add_parser("eval-clip", help="event-level check of a model on a rendered clip and its timeline")
    s.add_argument("model", help="model folder with manifest.yaml")
    s.add_argument("clip", help="clip.mp4 with clip.json beside it")
    s.set_defaults(func=_eval_clip)

    s = sub.add_parser("train", help="train a YOLO model (resumable)")
    s.add_argument("data", help="data.yaml of a YOLO dataset, or a dataset recipe (built first)")
    s.add_argument("--model", default="yolo11n.yaml",
                   help="architecture YAML (from scratch), starting weights of `model init`, or our own .pt to fine-tune from")
    s.add_argument("--epochs", type=at_least_one, default=30)
    s.add_argument("--imgsz", type=at_least_one, default=320)
    s.add_argument("--batch", type=at_least_one, default=16)
    s.add_argument("--name", default="streetwatch")
    s.add_argument("--device", default="cpu")
    s.add_argument("--freeze", type=int, default=0, help="keep the first N layers as they start (10: a COCO backbone)")
    s.add_argument("--lr0", type=float, help="fine-tune at this fixed AdamW learning rate, no warmup "
                                              "(e.g. 0.0002 to unfreeze a model trained with --freeze)")
    s.add_argument("--ood", help="image-level label CSV (with a split column) scored after every epoch; "
                                 "its val rows pick best_ood.pt")
    s.add_argument("--ood-images", help="folder of the photos --ood names")
    s.set_defaults(func=_train)
