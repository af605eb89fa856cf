"""A dataset build replaces a previous build of its own and nothing else (it once wiped any
folder it was pointed at, `.` and `..` included)."""

from __future__ import annotations

import pytest

from datasets.build import build_dataset
from datasets.output import OutputInUse
from datasets.recipe import RecipeError, load_recipe
from datasets.synth.generate import build_synthetic_dataset
from streetwatch_cli import main
from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe


def test_a_folder_that_is_not_a_previous_build_is_left_alone(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("important")
    with pytest.raises(OutputInUse, match="notes.txt"):
        build_synthetic_dataset(precious, 1, 0)
    assert main(["synth", "dataset", str(precious), "--train", "1", "--val", "0"]) == 2
    err = capsys.readouterr().err
    assert "not a dataset built here" in err and len(err.strip().splitlines()) == 1
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    with pytest.raises(OutputInUse):
        build_dataset(load_recipe(write_recipe(tmp_path)), precious)
    assert (precious / "notes.txt").read_text() == "important" and [p.name for p in precious.iterdir()] == ["notes.txt"]
    assert not list(tmp_path.glob(".precious-*"))  # refused before any work: no half-built folder beside it


def test_a_previous_build_is_replaced(tmp_path):
    out = tmp_path / "synth"
    build_synthetic_dataset(out, 2, 1, width=160, height=96)
    first = sorted(p.name for p in (out / "images" / "train").iterdir())
    build_synthetic_dataset(out, 1, 1, seed=5, width=160, height=96)
    second = sorted(p.name for p in (out / "images" / "train").iterdir())
    assert len(first) == 2 and len(second) == 1 and (out / "data.yaml").is_file()


@pytest.mark.parametrize("name", ["..", ".", ".hidden"])
def test_a_recipe_name_of_dots_is_refused(tmp_path, name):
    with pytest.raises(RecipeError, match="name"):
        load_recipe(write_recipe(tmp_path, name=name))
