"""Derive after a batch loads: known-issue matching over the builds that batch brought in.

It runs once all of a batch's texts are in the store, and is idempotent: the ledger skips every
(rule version, build attempt) already evaluated, so a batch loaded again derives nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from etl.config import Settings
from etl.stage.outbox import Manifest, Outbox
from etl.timeutil import to_utc_naive
from etl.warehouse.base import Warehouse

BuildKey = tuple[str, str, int]


def known_issue_rules(settings: Settings, report: Callable[[str], None]) -> list[Any]:
    """The configured known-issue rules; an unreadable rule file is one error line and no rules, not a failed load."""
    from etl.classify.known_issues import known_issues_for

    try:
        return known_issues_for(settings)
    except ValueError as exc:
        report(f"known issues: {exc}; fix the file, then `ci-telemetry classify --rebuild`")
        return []


def batch_builds(outbox: Outbox, batch_id: str) -> tuple[set[BuildKey], datetime | None]:
    """The (organization, project, build id) a staged batch holds, and the earliest queue time among them."""
    builds: set[BuildKey] = set()
    since: datetime | None = None
    for chunk in outbox.rows(batch_id, "TimelineBuilds"):
        for row in chunk:
            builds.add((row["Organization"], row["Project"], int(row["BuildId"])))
            queued = to_utc_naive(row.get("QueueTime"))
            if queued is not None:
                since = queued if since is None else min(since, queued)
    return builds, since


def derive_known_issues(warehouse: Warehouse, outbox: Outbox, manifest: Manifest, rules: list[Any]) -> int:
    """Match *rules* against the builds this batch loaded; the known-issue ledger rows written."""
    from etl.classify.known_issues import evaluate_known_issues

    builds, since = batch_builds(outbox, manifest.batch_id)
    if not builds or since is None or not rules:
        return 0
    return evaluate_known_issues(warehouse, rules, since, builds=builds, tag=f"known-issues-{manifest.batch_id}").rows
