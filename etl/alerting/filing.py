"""Filing: one work item or issue per alert summary, exactly once.

The ledger row is written right after each successful create, before the next summary, so a re-run (or a run
after a crash between summaries) finds the tracker id and files nothing again. A failed create leaves the
summary unfiled for the next run and does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from etl.alerting import render
from etl.alerting.config import Notify
from etl.alerting.http import TrackerError
from etl.alerting.ledger import read_alerts, read_summaries, update_alerts, write_summary
from etl.alerting.summaries import Summary, group
from etl.alerting.trackers import Tracker, guarded
from etl.timeutil import utc_now
from etl.warehouse.base import Warehouse


@dataclass
class Outcome:
    """What one run did; `errors` holds one line per failed call."""

    filed: list[str] = field(default_factory=list)
    already: int = 0
    recorded: int = 0
    errors: list[str] = field(default_factory=list)


def _changed(summary: Summary) -> bool:
    row = summary.ledger_row()
    before = summary.ledger
    return not before or any(row[k] != before.get(k) for k in ("AlertIds", "BuildFirst", "BuildLast"))


def file_summaries(warehouse: Warehouse, notify: Notify, tracker: Tracker | None, now: datetime | None = None) -> Outcome:
    """Group open alert-mode alerts into summaries, record them, and file each unfiled one on *tracker*."""
    now = now or utc_now()
    out = Outcome()
    if tracker is not None:
        try:
            guarded(tracker.where, tracker.reveal_credential)
        except TrackerError as exc:
            out.errors.append(str(exc))
            tracker = None  # still record the summaries; they are filed on a run that has the credential
    alerts = [a for a in read_alerts(warehouse) if a["mode"] == "alert"]
    open_ids = {a["AlertId"] for a in alerts if a.get("Status") == "open"}
    recorded = read_summaries(warehouse)
    summaries = group([a for a in alerts if a["AlertId"] in open_ids or _in_recorded(a, recorded)], recorded)
    for summary in summaries:
        row = summary.ledger_row()
        if row["TrackerId"]:
            out.already += 1
            if _changed(summary):
                write_summary(warehouse, row, now)
                joined = [a for a in summary.alerts if a.get("Url") != row["TrackerUrl"]]
                update_alerts(warehouse, joined, now, Url=row["TrackerUrl"])
            continue
        if tracker is None or not summary.fileable or not any(a["AlertId"] in open_ids for a in summary.alerts):
            if _changed(summary):
                write_summary(warehouse, row, now)
                out.recorded += 1
            continue
        is_html = tracker.kind == "azure-devops"
        body = render.body_html(summary, notify) if is_html else render.body_markdown(summary, notify)
        try:
            item = guarded(tracker.where, tracker.create, render.title(summary), body, [])
        except TrackerError as exc:
            out.errors.append(str(exc))
            if _changed(summary):
                write_summary(warehouse, row, now)
            continue
        row.update(Tracker=tracker.kind, TrackerId=item.id, TrackerUrl=item.url, TrackerState=item.state or "open",
                   FiledAt=now, QuietSince=now, LastWriteAt=now, Nudges=0)
        write_summary(warehouse, row, now)
        update_alerts(warehouse, summary.alerts, now, Url=item.url)
        out.filed.append(f"{summary.summary_id} -> {tracker.kind} {item.id} {item.url}")
    return out


def _in_recorded(alert: dict, recorded: list[dict]) -> bool:
    return any(alert["AlertId"] in (r.get("AlertIds") or []) for r in recorded)
