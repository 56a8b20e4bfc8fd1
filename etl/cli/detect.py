"""`ci-telemetry detect`: change points of a series read from standard input."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from etl.cli.common import fail

# Spelled out so `--help` imports neither scipy nor ruptures; a test keeps them equal to etl.analysis.detectors.
TECHNIQUE_NAMES = ("baseline", "binseg", "kernel", "pelt", "ttest")
DEFAULT_TECHNIQUE = "binseg"


def detect_command(
    technique: Annotated[
        str, typer.Option("--technique", "-t", help=f"One of: {', '.join(TECHNIQUE_NAMES)}.")
    ] = DEFAULT_TECHNIQUE,
) -> None:
    """Read a JSON list of numbers (null for a missing value) on stdin; print the change-point indices (first
    index after each change, counted in the list as given) as JSON.

    Example: echo '[1,1,1,null,1,1,1,1,5,5,5,5,5,null,5,5]' | ci-telemetry detect --technique binseg
    """
    from etl.analysis.detectors import TECHNIQUES, detect

    if technique not in TECHNIQUES:
        fail(f"--technique {technique!r}: expected one of {', '.join(sorted(TECHNIQUES))}")
    text = sys.stdin.read()
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"stdin: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); expected a list of numbers")
    except RecursionError:
        fail("stdin: JSON nested too deeply; expected a flat list of numbers")
    if not isinstance(values, list) or not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        fail("stdin: expected a JSON list of numbers or null, e.g. [1, 2.5, null, 3]")
    try:
        present = [None if v is None else float(v) for v in values]
    except OverflowError:
        fail("stdin: a number is too large for a float")
    typer.echo(json.dumps(detect(present, technique)))


def register(app: typer.Typer) -> None:
    app.command("detect")(detect_command)
