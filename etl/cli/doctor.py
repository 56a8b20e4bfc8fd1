"""`ci-telemetry doctor`: is everything a scheduled run needs in place? One line per check."""

from __future__ import annotations

from typing import Annotated

import typer

from etl.cli.common import DEFAULT_CONFIG_PATH, ConfigOption, fail, setup_logging


def doctor(
    config: ConfigOption = None,  # type: ignore[assignment]
    max_age: Annotated[
        str, typer.Option("--max-age", help="Largest accepted age of the newest build: 90m, 2h, 1d.")
    ] = "2h",
    require_data: Annotated[
        bool, typer.Option("--require-data", help="An empty store (no builds, no ETL run) fails instead of warning.")
    ] = False,
) -> None:
    """Check configuration, secrets, sources, warehouse, schema drift, the last ETL run and data freshness.

    Prints `ok`, `warn` or `FAIL` per check and exits 1 when any check fails. Secret values are
    never printed, only their references.

    Example: ci-telemetry doctor --config config/production.yaml --require-data
    """
    from etl.doctor import run_doctor
    from etl.freshness import parse_age

    try:
        limit = parse_age(max_age)
    except ValueError as exc:
        fail(f"--max-age: {exc}")
    setup_logging()
    checks = run_doctor(config or DEFAULT_CONFIG_PATH, max_age=limit, require_data=require_data)
    for check in checks:
        typer.echo(check.line())
    failed = sum(c.status == "FAIL" for c in checks)
    if failed:
        typer.echo(f"{failed} check(s) failed", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
