"""`ci-telemetry demo`: the whole product on this machine — simulated organization → ETL → alerts → reports."""

from __future__ import annotations

import time
from datetime import timedelta

import typer

from etl.cli.common import DEFAULT_CONFIG_PATH, ConfigOption, fail, load_settings, user_errors


def demo(config: ConfigOption = None) -> None:  # type: ignore[assignment]
    """Apply the schema, run the ETL, detect regressions into Alerts, render the reports; prints index.html's path last.

    Example: ci-telemetry demo && xdg-open reports/index.html
    """
    from rich.console import Console

    from etl.cli.alerts import run_detection
    from etl.reports.render import render_reports
    from etl.retention import summarize_daily
    from etl.run import RunOptions, run_etl
    from etl.warehouse import connected

    console = Console(stderr=True, highlight=False)
    say = lambda message: console.print(message, markup=False)  # noqa: E731
    settings = load_settings(config)
    t0 = time.monotonic()
    with user_errors():
        with connected(settings) as warehouse:
            changes = warehouse.apply_schema()
        say(f"schema: {len(changes)} change(s)")
        last = {"at": 0.0}

        def etl_progress(what: str, n: int) -> None:
            if time.monotonic() - last["at"] > 2:
                last["at"] = time.monotonic()
                say(f"etl: {what} {n}")

        summary = run_etl(settings, RunOptions(), etl_progress)
        say(f"etl: {sum(summary.loaded.values())} rows loaded, {summary.quarantined} quarantined, "
            f"{len(summary.errors)} error(s) in {summary.duration_seconds:.1f} s")
        for err in summary.errors:
            say(f"etl error: {err}")
        if summary.failed:
            fail("the ETL failed for a source; see the errors above", code=1)
        # Detection looks at all the history the sources hold; the report covers reports.days, as configured.
        history = max((getattr(s, "days", 0) for s in settings.sources), default=0) or settings.reports.days
        with connected(settings) as warehouse:
            # The long-term daily summary the retention step keeps; filled now so DailyBuildTrend() has data.
            daily = summarize_daily(warehouse, settings)
            say(f"daily summary: {len(daily.rows)} row(s) over {daily.days} day(s)")
        try:
            # the same step as `ci-telemetry alerts detect --days <history + 1>` after a scheduled ETL
            new, known, per_kind = run_detection(settings, history + 1)
        except ValueError as exc:
            fail(str(exc))
        found = ", ".join(f"{n} {k}" for k, n in per_kind.items())
        say(f"alerts detect: {found}; {new} new alert(s), {known} already known")
        run = render_reports(config or DEFAULT_CONFIG_PATH, progress=say)
    say(f"demo finished in {timedelta(seconds=round(time.monotonic() - t0))}")
    if not run.ok:
        typer.echo(str(run.index))
        fail("some reports failed; see above", code=1)
    typer.echo(str(run.index))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
