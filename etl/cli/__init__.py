"""The `ci-telemetry` command line.

Each module in this package owns one command group and exposes `register(app)`; they are found
at start-up, so adding a command never means editing a central list.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="ci-telemetry",
    help="CI analytics: Azure DevOps builds, timelines, tests and metrics into KQL tables, and reports.\n\n"
    "Example: ci-telemetry etl && ci-telemetry report --days 7",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _module.name.startswith("_") or _module.name == "common":
        continue
    importlib.import_module(f"{__name__}.{_module.name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
