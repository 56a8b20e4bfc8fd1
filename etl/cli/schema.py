"""`ci-telemetry schema apply|show`: create or merge the store's tables and functions from `kql/`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, load_settings, user_errors

schema_app = typer.Typer(help="Manage the store's schema, defined in kql/tables and kql/functions.",
                         no_args_is_help=True)


@schema_app.command("apply")
def apply(
    config: ConfigOption = None,  # type: ignore[assignment]
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Connect to nothing: write the cluster's script instead.")] = False,
    to: Annotated[Path | None, typer.Option("--to", help="With --dry-run: the file to write (default: standard output).")] = None,
) -> None:
    """Create or merge every table, mapping, policy, materialized view and function. Safe to run again: a no-op then.

    --dry-run writes the exact `.execute database script` an Azure Data Explorer database gets (retention
    periods from the settings), for review or to run by hand; the KQL parser test checks that script.

    Example: ci-telemetry schema apply --config config/example-production.yaml --dry-run --to schema.kql
    """
    from etl.warehouse import connected

    settings = load_settings(config)
    if to is not None and not dry_run:
        raise typer.BadParameter("--to needs --dry-run", param_hint="--to")
    if dry_run:
        from etl.warehouse.kusto import schema_commands, schema_script

        script = schema_script(settings.retention)
        if to is None:
            typer.echo(script, nl=False)
        else:
            to.parent.mkdir(parents=True, exist_ok=True)
            to.write_text(script, encoding="utf-8")
            typer.echo(f"wrote {to}: the schema script ({len(schema_commands(settings.retention))} commands)")
        return
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
    from etl.warehouse import connected

    settings = load_settings(config)
    with user_errors(), connected(settings) as warehouse:
        tables = warehouse.list_tables()
    for name, columns in sorted(tables.items()):
        typer.echo(f"{name} ({', '.join(f'{c}:{t}' for c, t in columns)})")


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
