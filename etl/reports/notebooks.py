"""The report notebooks: `notebooks/<name>.py`, jupytext percent-format Python (linted by ruff like the rest).

Each file is the notebook's source; `read_notebook` turns it into a notebook for papermill to execute. Cells
are thin: they call `etl.analysis` and `etl.reports`, which hold the logic and are unit-tested. Open a file
as a notebook with `jupytext --to ipynb notebooks/ci_health.py`, or edit it as the Python file it is.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from etl import resources

NOTEBOOK_DIR = resources.folder("notebooks")
NOTEBOOKS = ("ci_health", "flakiness", "regressions")


def notebook_path(name: str, directory: Path = NOTEBOOK_DIR) -> Path:
    """The source file of report *name*."""
    return directory / f"{name}.py"


def read_notebook(name: str, directory: Path = NOTEBOOK_DIR) -> nbformat.NotebookNode:
    """Report *name* as a notebook (cells from its `# %%` markers; the parameters cell keeps its tag)."""
    import jupytext

    nb = jupytext.read(notebook_path(name, directory), fmt="py:percent")
    nb.metadata.setdefault("language_info", {"name": "python"})
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name}-{i:02d}"  # stable ids: the executed notebook is the same file on every run
    nbformat.validate(nb)
    return nb
