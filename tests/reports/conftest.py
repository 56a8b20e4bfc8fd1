"""The reports of the hand-made store (report_rows), rendered once per test session and shared.

Rendering runs three notebooks in fresh kernels (seconds each); the report and browser tests only
read the result, so every xdist worker reuses the one copy: the first to ask renders it under a
file lock, the others wait for it. Tests must not write into it.
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import pytest
from report_rows import END, make_config

from etl.reports.render import render_reports


@pytest.fixture(scope="session")
def rendered_reports(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The 14 days before END rendered to HTML (index, three reports, their notebooks): read-only, shared."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # the session's folder, above each worker's own
    root, done = shared / "rendered-reports", shared / "rendered-reports.done"
    with (shared / "rendered-reports.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a worker that failed half-way left a partial copy
            run = render_reports(make_config(root), days=14, out_dir=root / "out", end=END)
            assert run.ok, [r.error for r in run.results]
            done.touch()
    return root / "out"
