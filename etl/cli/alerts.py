"""`ci-telemetry alerts detect|list|resolve`: detection into Alerts, and the alerts' lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings, user_errors

if TYPE_CHECKING:
    from etl.config import Settings

# Spelled out so `--help` imports no analytics library; a test keeps it equal to etl.analysis.alerts.RESOLUTIONS.
RESOLUTIONS_HELP = "FIXED | WONTFIX | INVALID | WORKSFORME"

alerts_app = typer.Typer(help="Alerts: detect changes and flaky tests into them, list them, resolve them.",
                         no_args_is_help=True)

_COLUMNS = ["AlertId", "Status", "Resolution", "Kind", "Mode", "Metric", "Series", "BuildBefore", "BuildAfter",
            "Before", "After", "ChangePercent", "Technique"]
KINDS = ("regression", "improvement", "change", "flaky")


def run_detection(settings: Settings, days: int, now: datetime | None = None) -> tuple[int, int, dict[str, int]]:
    """Run every monitor and the flakiness rules over the last *days* days and record Alerts once;
    returns (new, already known, rows found per Kind). `demo` and `alerts detect` both call this."""
    from etl.analysis.alerts import detect_and_record
    from etl.analysis.data import Period
    from etl.analysis.flaky import FlakyThresholds
    from etl.warehouse import connected

    rs = settings.reports
    thresholds = FlakyThresholds(min_results=rs.flaky_min_results, min_commits=rs.flaky_min_commits,
                                 min_rate=rs.flaky_min_rate)
    with connected(settings) as warehouse:
        found, new, known = detect_and_record(warehouse, settings.path(rs.monitors), Period.last_days(days, now),
                                              flaky_thresholds=thresholds)
    per_kind = {k: int((found["Kind"] == k).sum()) if len(found) else 0 for k in KINDS}
    return new, known, per_kind


@alerts_app.command("detect")
def detect_command(
    days: Annotated[int | None, typer.Option("--days", min=1, max=730, help="Look back this many days (default: reports.days).")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Run every monitor of monitors.yaml and the flakiness rules, and record what they find in Alerts.

    Idempotent: a change or flaky test already recorded keeps its alert (and its status). Run it after each ETL.

    Example: ci-telemetry alerts detect --days 28 --config config/production.yaml
    """
    settings = load_settings(config)
    with user_errors():
        try:
            new, known, per_kind = run_detection(settings, days or settings.reports.days)
        except ValueError as exc:
            fail(str(exc))
    found = ", ".join(f"{n} {k}" for k, n in per_kind.items())
    typer.echo(f"alerts detect: {found}; {new} new alert(s), {known} already known")


@alerts_app.command("list")
def list_command(
    status: Annotated[str, typer.Option("--status", help="open or resolved (default: all).")] = "",
    kind: Annotated[str, typer.Option("--kind", help=f"{' | '.join(KINDS)} (default: all).")] = "",
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """List alerts, newest first.

    Example: ci-telemetry alerts list --status open --kind regression
    """
    from etl.analysis.alerts import list_alerts
    from etl.warehouse import connected

    if status not in ("", "open", "resolved"):
        fail(f"--status {status!r}: expected open or resolved")
    if kind not in ("", *KINDS):
        fail(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    settings = load_settings(config)
    with user_errors(), connected(settings, read_only=True) as warehouse:
        frame = list_alerts(warehouse, status, kind)
    if frame.empty:
        typer.echo("(no alerts)")
        return
    frame = frame[_COLUMNS].copy()
    frame["ChangePercent"] = frame["ChangePercent"].map(lambda v: f"{v:+.1f}%")
    typer.echo(frame.to_string(index=False))


@alerts_app.command("resolve")
def resolve_command(
    alert_id: Annotated[str, typer.Argument(help="The AlertId (see `alerts list`).")],
    resolution: Annotated[str, typer.Option("--resolution", "-r", help=RESOLUTIONS_HELP)],
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Resolve an alert with FIXED, WONTFIX, INVALID or WORKSFORME.

    Example: ci-telemetry alerts resolve 3f2a9c0d1e4b5a6c7d8e --resolution FIXED
    """
    from etl.analysis.alerts import RESOLUTIONS, AlertError, resolve_alert
    from etl.warehouse import connected

    if resolution.upper() not in RESOLUTIONS:
        fail(f"--resolution {resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    settings = load_settings(config)
    with user_errors(), connected(settings) as warehouse:
        try:
            resolve_alert(warehouse, alert_id, resolution)
        except AlertError as exc:
            fail(str(exc))
    typer.echo(f"{alert_id}: resolved ({resolution.upper()})")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
