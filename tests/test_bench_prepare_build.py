"""`bench/prepare_build.py` runs on a small extraction, and its whole path loads every staged row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "prepare_build.py"


@pytest.mark.parametrize("extra", [[], ["--without-raw-staging"]])
def test_prepare_build_times_two_builds_staged_and_loaded(extra: list[str]) -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--builds", "2", "--repeat", "1", *extra],
                         capture_output=True, text=True, timeout=300, check=True).stdout.splitlines()

    assert out[0] == "2 builds, 2,469 timeline records, 1.8 MB of timeline bodies; CPU seconds, best of 1"
    assert out[3].startswith("  prepared, staged, loaded ")
    assert out[4].startswith("    of which the staged writes and commit ")
