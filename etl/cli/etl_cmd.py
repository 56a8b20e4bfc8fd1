"""`ci-telemetry etl`: pull what is new from every configured source and load it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings, user_errors
from etl.timeutil import to_utc_naive

if TYPE_CHECKING:
    from rich.console import Console

    from etl.run import RunSummary


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return to_utc_naive(value)
    except (TypeError, ValueError):
        fail(f"--since {value!r}: expected a date or datetime such as 2026-11-01 or 2026-11-01T06:00:00Z")


def render_summary(summary: RunSummary, console: Console) -> None:
    """The end-of-run tables: rows per table, then per source and project."""
    from rich.table import Table

    from etl.stage.outbox import TABLE_ORDER

    rows = Table(title=f"ETL run {summary.run_id}" + (" (dry run: nothing loaded)" if summary.dry_run else ""))
    rows.add_column("Table")
    rows.add_column("Rows staged", justify="right")
    rows.add_column("Rows loaded", justify="right")
    for table in TABLE_ORDER:
        rows.add_row(table, str(summary.staged.get(table, 0)), str(summary.loaded.get(table, 0)))
    console.print(rows)
    sources = Table()
    for col in ("Source", "Project", "Batches", "Builds", "Quarantined", "Status"):
        sources.add_column(col, justify="right" if col in ("Batches", "Builds", "Quarantined") else "left")
    for o in summary.outcomes:
        sources.add_row(o.source, o.project, str(o.batches), str(o.builds), str(o.quarantined), str(o.status))
    console.print(sources)
    console.print(f"quarantined: {summary.quarantined}  failed loads: {len(summary.load_failures)}  "
                  f"dead batches: {len(summary.dead_batches)}  incomplete batches: {len(summary.incomplete_batches)}  "
                  f"errors: {len(summary.errors)}  known-issue evaluations: {summary.known_issue_rows}  "
                  f"duration: {summary.duration_seconds:.1f} s", highlight=False)


def etl(
    since: Annotated[str | None, typer.Option(help="Read builds finished since this date, overriding the "
                                                   "watermark (e.g. 2026-11-01).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Extract, normalize and stage; load nothing.")] = False,
    summary_file: Annotated[Path | None, typer.Option(help="Also write the run summary as Markdown here.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=0, max=64, help="Processes that normalize builds beside this one, overriding `staging.workers` "
                            "(for a backfill: 2 on 2 cores; each holds about 100 MB).")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Pull new builds, timelines, tests and metrics from every source, stage them in the outbox, load them.

    Each batch is staged (data/staging/outbox) before it loads; the watermark moves only once all
    its tables are loaded. A bad build or document is quarantined alone; a batch that fails to load
    is retried by later runs, then moved to outbox/dead (see `outbox retry`, `outbox drop`).
    Exits non-zero when a source or a load failed; the other sources and batches still load.

    Example: ci-telemetry etl --since 2026-11-01 --summary-file etl-summary.md
    Example (a backfill on two cores): ci-telemetry etl --since 2026-09-01 --workers 2
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from etl.run import RunOptions, run_etl

    settings = load_settings(config)
    if workers is not None:
        settings = settings.model_copy(update={"staging": settings.staging.model_copy(update={"workers": workers})})
    options = RunOptions(since=_parse_since(since), dry_run=dry_run)
    if settings.warehouse.kind == "local":
        # Its rows are plain Python values all the way to DuckDB: pyarrow need not load pandas (~40 MB).
        # (A cluster's answers are DataFrames: azure-kusto-data builds them.)
        from etl.stage.memory import defer_pandas

        defer_pandas()
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False)
    bars = Progress(TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.completed:>9,.0f}"),
                    TimeElapsedColumn(), console=err, transient=True)
    with user_errors(), bars as progress:
        tasks = {k: progress.add_task(k, total=None) for k in ("builds", "timelines", "tests", "rows")}

        def advance(kind: str, n: int) -> None:
            if kind in tasks:
                progress.advance(tasks[kind], n)

        summary = run_etl(settings, options, progress=advance,
                          on_error=lambda line: progress.console.print(f"error: {line}", markup=False, soft_wrap=True))
    render_summary(summary, out)
    if summary_file is not None:
        summary_file.parent.mkdir(parents=True, exist_ok=True)
        summary_file.write_text(summary.markdown(), encoding="utf-8")
    if summary.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("etl")(etl)
