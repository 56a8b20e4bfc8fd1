"""`ci-telemetry outbox list|show|release`: see what was staged, what will load, and release held batches."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings, user_errors
from etl.stage.outbox import TABLE_ORDER, Outbox

outbox_app = typer.Typer(help="The staged batches (data/staging/outbox): list, show, release held ones.",
                         no_args_is_help=True)


@outbox_app.command("list")
def list_batches(
    status: Annotated[str | None, typer.Option(help="Only batches with this status: pending, held, loaded, "
                                                    "dry-run.")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """List staged batches, oldest first: id, status, source/project, watermark range, rows.

    Example: ci-telemetry outbox list --status held
    """
    settings = load_settings(config)
    batches = Outbox(settings.path(settings.staging.dir)).batches(status)
    if not batches:
        typer.echo("(no batches)")
        return
    for m in batches:
        rows = sum(m.counts.values())
        where = "/".join(p for p in (m.source, m.organization, m.project) if p)
        typer.echo(f"{m.batch_id}  {m.status:<8} {where}  {m.watermark_from} → {m.watermark_to}  "
                   f"builds={m.builds} rows={rows} quarantined={m.quarantined}")


@outbox_app.command("show")
def show(
    batch: Annotated[str, typer.Argument(help="The batch id (see `outbox list`).")],
    rows: Annotated[int, typer.Option(help="Also print this many rows of each table.")] = 0,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Show one batch: manifest, row counts per table, and optionally its first rows.

    Example: ci-telemetry outbox show 20261123T060000-3f2a9c1b7d4e --rows 3
    """
    settings = load_settings(config)
    outbox = Outbox(settings.path(settings.staging.dir))
    try:
        m = outbox.get(batch)
    except KeyError as exc:
        fail(str(exc.args[0]))
    typer.echo(f"batch:      {m.batch_id}")
    typer.echo(f"status:     {m.status}")
    typer.echo(f"source:     {m.source} {m.organization} {m.project}".rstrip())
    typer.echo(f"watermark:  {m.watermark_from} → {m.watermark_to}")
    typer.echo(f"staged at:  {m.staged_at}" + (f"  loaded at: {m.loaded_at}" if m.loaded_at else ""))
    typer.echo(f"builds:     {m.builds}   quarantined: {m.quarantined}")
    for table in TABLE_ORDER:
        if m.counts.get(table):
            typer.echo(f"  {table:<16} {m.counts[table]:>8} rows")
    for line in m.errors:
        typer.echo(f"  error: {line}")
    if rows > 0:
        for table in TABLE_ORDER:
            for chunk in outbox.rows(m.batch_id, table, chunk=rows):
                typer.echo(f"-- {table}")
                for row in chunk:
                    typer.echo(json.dumps(row, sort_keys=True))
                break


@outbox_app.command("release")
def release(
    batch: Annotated[str | None, typer.Argument(help="One held batch id; all held batches when omitted.")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Load batches held by `staging.hold_loads` (all, or one), oldest first, then advance their watermarks.

    Example: ci-telemetry outbox release
    """
    from etl.run import release_held

    settings = load_settings(config)
    with user_errors():
        try:
            released = release_held(settings, batch)
        except KeyError as exc:
            fail(str(exc.args[0]))
    if not released:
        typer.echo("no held batches")
    for batch_id, counts in released:
        typer.echo(f"released {batch_id}: {sum(counts.values())} rows loaded")


def register(app: typer.Typer) -> None:
    app.add_typer(outbox_app, name="outbox")
