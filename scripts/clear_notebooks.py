"""Strip outputs and execution counts from notebooks before committing them.

    .venv/bin/python scripts/clear_notebooks.py notebooks/*.ipynb

(what `jupyter nbconvert --clear-output --inplace` does, with only nbformat, which papermill
brings; tests/test_retraining.py refuses committed outputs)."""

from __future__ import annotations

import sys

import nbformat


def main(paths: list[str]) -> int:
    for path in paths:
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(book, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
