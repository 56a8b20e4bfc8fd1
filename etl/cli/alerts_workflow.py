"""`ci-telemetry alerts notify|sync`: alert summaries to a tracker and a daily digest, and tracker state back.

The commands join the `alerts` group of `etl.cli.alerts` (registered first, modules load in name order).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated

import typer

from etl.cli.alerts import alerts_app
from etl.cli.common import ConfigOption, fail, load_settings, user_errors

NowOption = Annotated[
    str,
    typer.Option("--now", help="Act as if it were this UTC time (ISO 8601), e.g. to replay a missed day.", show_default="now"),
]


def _now(text: str) -> datetime | None:
    if not text:
        return None
    from etl.timeutil import to_utc_naive

    try:
        return to_utc_naive(text)
    except (TypeError, ValueError):
        fail(f"--now {text!r}: expected an ISO 8601 time such as 2026-12-01T06:00:00Z")


def _notify(settings):
    from etl.alerting.config import load_notify

    path = settings.path(settings.reports.monitors)
    try:
        return load_notify(path)
    except ValueError as exc:
        fail(str(exc))


def _report_errors(errors: list[str]) -> None:
    from etl.secret_refs import mask

    for message, count in Counter(errors).items():
        typer.echo(f"error: {mask(message)}" + (f" (x{count})" if count > 1 else ""), err=True)


@alerts_app.command("notify")
def notify_command(
    now: NowOption = "",
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Group open alerts into summaries, file one work item or issue per new summary, post the daily digest.

    Where they go is the `notify:` section of monitors.yaml. Re-running files nothing twice and posts at
    most one digest per UTC day. A failed call is one error line; the other summaries still go.

    Example: ci-telemetry alerts notify
    """
    from etl.alerting.digest import post_digest
    from etl.alerting.filing import file_summaries
    from etl.alerting.http import TrackerError
    from etl.alerting.trackers import tracker_for
    from etl.warehouse import connected

    when = _now(now)
    settings = load_settings(config)
    notify = _notify(settings)
    errors: list[str] = []
    with user_errors(), connected(settings) as warehouse:
        outcome = file_summaries(warehouse, notify, tracker_for(notify), when)
        errors += outcome.errors
        for line in outcome.filed:
            typer.echo(f"filed {line}")
        typer.echo(f"summaries: {len(outcome.filed)} filed, {outcome.already} already filed, "
                   f"{outcome.recorded} recorded without a tracker item (tracker: {notify.tracker})")
        if notify.webhook:
            try:
                digest = post_digest(warehouse, notify.webhook, when, notify.timeout_seconds)
                typer.echo(f"digest: {digest.posted} change(s) posted" if digest.posted else f"digest: not posted ({digest.reason})")
            except TrackerError as exc:
                errors.append(str(exc))
    _report_errors(errors)
    if errors:
        raise typer.Exit(1)


@alerts_app.command("sync")
def sync_command(
    daily: Annotated[bool, typer.Option("--daily", help="Skip summaries already synced this UTC day (for an hourly schedule).")] = False,
    now: NowOption = "",
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Read each filed work item or issue: a closed one resolves its alerts (FIXED, WONTFIX, INVALID,
    WORKSFORME); one untouched for 3 or 7 days gets one reminder comment each time. Run daily.

    Example: ci-telemetry alerts sync --daily
    """
    from etl.alerting.sync import sync
    from etl.alerting.trackers import tracker_for
    from etl.warehouse import connected

    when = _now(now)
    settings = load_settings(config)
    notify = _notify(settings)
    tracker = tracker_for(notify)
    if tracker is None:
        typer.echo("sync: nothing to do (notify.tracker is none)")
        return
    with user_errors(), connected(settings) as warehouse:
        outcome = sync(warehouse, notify, tracker, when, daily=daily)
    for line in outcome.resolved:
        typer.echo(f"resolved {line}")
    for line in outcome.nudged:
        typer.echo(f"nudged {line}")
    typer.echo(f"sync: {outcome.checked} checked, {len(outcome.resolved)} resolved, {len(outcome.nudged)} nudged")
    _report_errors(outcome.errors)
    if outcome.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Nothing to add to *app*: the commands hang on the `alerts` group."""
