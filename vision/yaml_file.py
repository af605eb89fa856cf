"""Reading a YAML file a person wrote (edge config, dataset recipe, model manifest): every
way it can fail is one line naming the file, in the caller's own error type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path, error: type[Exception], loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a SafeLoader)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"{path}:{f' line {mark.line + 1}' if mark else ''} not valid YAML") from exc
