"""`ci-telemetry report`: execute the report notebooks and render them to self-contained HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from etl.cli.common import DEFAULT_CONFIG_PATH, ConfigOption, fail, load_settings, user_errors


def progress_printer():
    """A progress callback writing to stderr (stdout keeps only the result)."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    return lambda message: console.print(message, markup=False)


def report(
    days: Annotated[int | None, typer.Option("--days", "-d", min=1, max=730, help="Period length (default: reports.days).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory (default: reports.out_dir).")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Render the CI health, flakiness and regressions reports and index.html; prints the index path.

    Example: ci-telemetry report --days 7 --out reports/weekly
    """
    load_settings(config)  # validates the config with one-line errors before any kernel starts
    from etl.reports.render import render_reports

    with user_errors():
        run = render_reports(config or DEFAULT_CONFIG_PATH, days=days, out_dir=out, progress=progress_printer())
    if not run.ok:
        for r in run.results:
            if r.error:
                typer.echo(f"error: {r.error}", err=True)
        typer.echo(str(run.index))
        fail(f"{sum(1 for r in run.results if r.error)} of {len(run.results)} reports failed; see {run.index}", code=1)
    typer.echo(str(run.index))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
