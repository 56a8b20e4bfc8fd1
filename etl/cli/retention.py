"""`ci-telemetry retention apply`: summarize into DailyBuildSummary, then delete expired raw rows."""

from __future__ import annotations

from typing import Annotated

import typer

from etl.cli.common import ConfigOption, load_settings, user_errors

retention_app = typer.Typer(help="Keep raw tables within their retention periods; keep daily summaries.",
                            no_args_is_help=True)


@retention_app.command("apply")
def apply(
    config: ConfigOption = None,  # type: ignore[assignment]
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be summarized and deleted; change nothing.")] = False,
) -> None:
    """Fill DailyBuildSummary from the Latest views, then delete rows older than settings.retention.

    Local store: deletes expired rows (builds_days for builds, metrics, alerts, runs; details_days for
    records, issues, test runs/results, samples). Azure Data Explorer: only the summary is written;
    the tables' retention policies (set by `schema apply`) delete raw rows.

    Example: ci-telemetry retention apply --dry-run
    """
    from etl.retention import apply_retention
    from etl.warehouse import connected

    settings = load_settings(config)
    with user_errors(), connected(settings) as warehouse:
        report = apply_retention(warehouse, settings, dry_run=dry_run)
    for line in report.lines():
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
