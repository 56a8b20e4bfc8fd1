"""`ci-telemetry schema apply|show`: create or merge the store's tables and functions from `kql/`."""

from __future__ import annotations

import typer

from etl.cli.common import ConfigOption, load_settings, user_errors
from etl.warehouse import connected

schema_app = typer.Typer(help="Manage the store's schema, defined in kql/tables and kql/functions.",
                         no_args_is_help=True)


@schema_app.command("apply")
def apply(config: ConfigOption = None) -> None:  # type: ignore[assignment]
    """Create or merge every table, mapping, policy and function. Safe to run again: a no-op then.

    Example: ci-telemetry schema apply --config config/example-production.yaml
    """
    settings = load_settings(config)
    with user_errors(), connected(settings) as warehouse:
        changes = warehouse.apply_schema()
    if changes:
        for change in changes:
            typer.echo(change)
        typer.echo(f"{len(changes)} change(s) applied")
    else:
        typer.echo("schema is up to date: nothing to change")


@schema_app.command("show")
def show(config: ConfigOption = None) -> None:  # type: ignore[assignment]
    """List the store's tables and their columns.

    Example: ci-telemetry schema show
    """
    settings = load_settings(config)
    with user_errors(), connected(settings) as warehouse:
        tables = warehouse.list_tables()
    for name, columns in sorted(tables.items()):
        typer.echo(f"{name} ({', '.join(f'{c}:{t}' for c, t in columns)})")


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
