"""Reading the project's YAML files with errors a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path, error: type[Exception] = ValueError) -> Any:
    """Parse *path*; raise *error* with one line naming the file (and the line, for a syntax error)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
