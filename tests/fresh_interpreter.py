"""Run a script in a fresh interpreter, where nothing another test imported can hide what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def printed_json(script: str, *args: str) -> Any:
    """What *script* (run with *args* in a fresh interpreter, from the project root) prints as JSON on its last line."""
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True,
                         cwd=PROJECT_ROOT, timeout=120)
    return json.loads(out.stdout.splitlines()[-1])
