"""Every command of the CLI explains itself: `--help` works and shows an example."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from etl.cli import app


def leaf_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    children = getattr(command, "commands", None)
    if children is None or getattr(command, "invoke_without_command", False):
        yield path  # a command, or a group that also runs on its own (`classify`)
    if children is None:
        return
    for name, child in children.items():
        yield from leaf_commands(child, (*path, name))


COMMANDS = sorted(leaf_commands(typer.main.get_command(app)))


def test_the_cli_has_the_commands_the_issues_ask_for() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"schema apply", "query", "serve", "etl", "outbox list", "outbox show", "outbox release",
            "simulator serve", "classify", "privacy report", "report", "alerts list", "alerts resolve", "detect",
            "demo", "doctor", "freshness", "collect", "retention apply"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_of_every_command_shows_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
