"""`ci-telemetry outbox list|show|release|retry|drop`: see what was staged, release held batches, act on dead ones."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings, user_errors

outbox_app = typer.Typer(help="The staged batches (data/staging/outbox): list, show, release held ones, "
                              "retry or drop dead ones.", no_args_is_help=True)


@outbox_app.command("list")
def list_batches(
    status: Annotated[str | None, typer.Option(help="Only batches with this status: pending, held, loaded, "
                                                    "incomplete, dry-run, dead.")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """List staged batches, oldest first: id, status, source/project, watermark range, rows.

    Example: ci-telemetry outbox list --status held
    """
    from etl.stage.outbox import Outbox

    settings = load_settings(config)
    batches = Outbox(settings.path(settings.staging.dir)).batches(status)
    if not batches:
        typer.echo("(no batches)")
        return
    for m in batches:
        rows = sum(m.counts.values())
        where = "/".join(p for p in (m.source, m.organization, m.project) if p)
        typer.echo(f"{m.batch_id}  {m.status:<8} {where}  {m.watermark_from} → {m.watermark_to}  "
                   f"builds={m.builds} rows={rows} quarantined={m.quarantined}"
                   + (f" attempts={m.attempts}" if m.attempts else ""))


@outbox_app.command("show")
def show(
    batch: Annotated[str, typer.Argument(help="The batch id (see `outbox list`).")],
    rows: Annotated[int, typer.Option(help="Also print this many rows of each table.")] = 0,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Show one batch: manifest, row counts per table, and optionally its first rows.

    Example: ci-telemetry outbox show 20261123T060000-3f2a9c1b7d4e --rows 3
    """
    from etl.stage.outbox import TABLE_ORDER, Outbox

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
    typer.echo(f"builds:     {m.builds}   quarantined: {m.quarantined}   failed load attempts: {m.attempts}")
    if m.last_error:
        typer.echo(f"last error: {m.last_error}")
    for table in TABLE_ORDER:
        if m.counts.get(table):
            typer.echo(f"  {table:<16} {m.counts[table]:>8} rows")
    for line in m.errors:
        typer.echo(f"  error: {line}")
    for line in m.incomplete:
        typer.echo(f"  incomplete: {line}")
    if rows > 0:
        for table in TABLE_ORDER:
            for chunk in outbox.rows(m.batch_id, table, chunk=rows):
                typer.echo(f"-- {table}")
                for row in chunk:
                    typer.echo(json.dumps(row, sort_keys=True, default=str))
                break


@outbox_app.command("release")
def release(
    batch: Annotated[str | None, typer.Argument(help="One held batch id; all held batches when omitted.")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Load batches held by `staging.hold_loads` (all, or one), oldest first, then advance their watermarks.

    Example: ci-telemetry outbox release
    """
    from etl.outbox_ops import release_held

    settings = load_settings(config)
    errors: list[str] = []
    with user_errors():
        try:
            released = release_held(settings, batch, on_error=errors.append)
        except KeyError as exc:
            fail(str(exc.args[0]))
    if not released:
        typer.echo("no held batches")
    for line in errors:
        typer.echo(f"error: {line}", err=True)
    for batch_id, status, rows in released:
        typer.echo(f"released {batch_id}: {rows} rows loaded ({status})")
    if any(status in ("retrying", "dead") for _, status, _ in released):
        raise typer.Exit(1)


@outbox_app.command("retry")
def retry(
    batch: Annotated[str, typer.Argument(help="The dead batch id (see `outbox list --status dead`).")],
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Load a dead batch again now, its attempts reset — after the cause (store outage, full disk) is fixed.

    On success its watermark and known issues follow, as in a run. On failure it stays pending and
    later runs retry it; the command exits 1 with the reason.

    Example: ci-telemetry outbox retry 20261123T060000-3f2a9c1b7d4e
    """
    from etl.outbox_ops import retry_dead

    settings = load_settings(config)
    errors: list[str] = []
    with user_errors():
        try:
            status = retry_dead(settings, batch, on_error=errors.append)
        except KeyError as exc:
            fail(str(exc.args[0]))
    for line in errors:
        typer.echo(f"error: {line}", err=True)
    typer.echo(f"retried {batch}: {status}")
    if status in ("retrying", "dead"):
        raise typer.Exit(1)


@outbox_app.command("drop")
def drop(
    batch: Annotated[str, typer.Argument(help="The dead batch id (see `outbox list --status dead`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in outbox/dropped and in EtlRuns).")],
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Delete a dead batch whose staged copy is bad (garbled, or staged by a since-fixed bug).

    Its manifest and the reason stay under outbox/dropped/ and in an EtlRuns row `dropped`. The
    watermark never passed its window, so the next `etl` reads that window again with the current code.

    Example: ci-telemetry outbox drop 20261123T060000-3f2a9c1b7d4e --reason "garbled TimelineRecords.parquet"
    """
    from etl.outbox_ops import drop_dead

    if not reason.strip():
        fail("--reason: say why the batch is dropped")
    settings = load_settings(config)
    with user_errors():
        try:
            manifest = drop_dead(settings, batch, reason.strip())
        except KeyError as exc:
            fail(str(exc.args[0]))
    typer.echo(f"dropped {batch} ({manifest.where} {manifest.watermark_from} → {manifest.watermark_to}); "
               "the next etl run reads its window again")


def register(app: typer.Typer) -> None:
    app.add_typer(outbox_app, name="outbox")
