"""`ci-telemetry freshness --max-age 2h`: fail when the newest ingested build is too old."""

from __future__ import annotations

from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings, user_errors

#: Exit codes: fresh, stale (or no data), and a usage/config/store error.
FRESH, STALE, ERROR = 0, 1, 2


def freshness(
    max_age: Annotated[
        str, typer.Option("--max-age", help="Largest accepted age of the newest build's FinishTime: 90m, 2h, 1d.")
    ] = "2h",
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Exit 1 with one line when the newest ingested build finished longer ago than --max-age (or there is none).

    Measured on FinishTime in LatestTimelineBuilds, not IngestedAt: only new builds move it.
    Also exit 1, one line each, while the outbox holds dead batches or a stuck pending batch, or
    the quarantine grew within --max-age.
    Exit codes: 0 fresh, 1 stale, empty or stuck, 2 bad option, configuration or unreachable store.

    Example: ci-telemetry freshness --max-age 2h --config config/production.yaml
    """
    from etl.freshness import check_freshness, outbox_problems, parse_age
    from etl.warehouse import connected

    try:
        limit = parse_age(max_age)
    except ValueError as exc:
        fail(f"--max-age: {exc}", ERROR)
    settings = load_settings(config)
    if settings.warehouse.kind == "local" and not settings.path(settings.warehouse.path).exists():
        typer.echo(f"stale: no builds ingested yet (store {settings.path(settings.warehouse.path)} does not exist)")
        raise typer.Exit(STALE)
    with user_errors(), connected(settings, read_only=settings.warehouse.kind == "local") as warehouse:
        result = check_freshness(warehouse, limit)
    typer.echo(result.line())
    problems = outbox_problems(settings.path(settings.staging.dir), limit, result.now,
                               settings.staging.max_load_attempts)
    for line in problems:
        typer.echo(f"stuck: {line}")
    raise typer.Exit(FRESH if result.fresh and not problems else STALE)


def register(app: typer.Typer) -> None:
    app.command("freshness")(freshness)
