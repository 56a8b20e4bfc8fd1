"""`ci-telemetry alerts list|resolve`: the regression alerts and their lifecycle."""

from __future__ import annotations

from typing import Annotated

import typer

from etl.analysis.alerts import RESOLUTIONS, AlertError, list_alerts, resolve_alert
from etl.cli.common import ConfigOption, fail, load_settings, user_errors
from etl.warehouse import open_warehouse

alerts_app = typer.Typer(help="Regression alerts: list them, resolve them.", no_args_is_help=True)

_COLUMNS = ["AlertId", "Status", "Resolution", "Direction", "Metric", "Series", "BuildBefore", "BuildAfter",
            "Before", "After", "ChangePercent", "Technique"]


@alerts_app.command("list")
def list_command(
    status: Annotated[str, typer.Option("--status", help="open or resolved (default: all).")] = "",
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """List alerts, newest first.

    Example: ci-telemetry alerts list --status open
    """
    if status not in ("", "open", "resolved"):
        fail(f"--status {status!r}: expected open or resolved")
    settings = load_settings(config)
    with user_errors():
        warehouse = open_warehouse(settings, read_only=True)
        try:
            frame = list_alerts(warehouse, status)
        finally:
            warehouse.close()
    if frame.empty:
        typer.echo("(no alerts)")
        return
    frame = frame[_COLUMNS].copy()
    frame["ChangePercent"] = frame["ChangePercent"].map(lambda v: f"{v:+.1f}%")
    typer.echo(frame.to_string(index=False))


@alerts_app.command("resolve")
def resolve_command(
    alert_id: Annotated[str, typer.Argument(help="The AlertId (see `alerts list`).")],
    resolution: Annotated[str, typer.Option("--resolution", "-r", help=" | ".join(RESOLUTIONS))],
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Resolve an alert with FIXED, WONTFIX, INVALID or WORKSFORME.

    Example: ci-telemetry alerts resolve 3f2a9c0d1e4b5a6c7d8e --resolution FIXED
    """
    if resolution.upper() not in RESOLUTIONS:
        fail(f"--resolution {resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    settings = load_settings(config)
    with user_errors():
        warehouse = open_warehouse(settings)
        try:
            resolve_alert(warehouse, alert_id, resolution)
        except AlertError as exc:
            fail(str(exc))
        finally:
            warehouse.close()
    typer.echo(f"{alert_id}: resolved ({resolution.upper()})")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
