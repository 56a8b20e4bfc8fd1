"""The daily sync: tracker state back into Alerts Status/Resolution, and nudges on untouched summaries.

"Untouched" means no change on the tracker item by anyone but this workflow: a change time later than the
workflow's own last write (plus a tolerance for clock skew) resets the quiet period. Each threshold of
`nudge_days` (default 3 and 7) is commented on once; a sync that was not run for a while sends one comment
for the highest threshold passed, not one per threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from etl.alerting import render, states
from etl.alerting.config import Notify
from etl.alerting.http import TrackerError
from etl.alerting.ledger import read_alerts, read_summaries, update_alerts, write_summary
from etl.alerting.trackers import Tracker, guarded
from etl.timeutil import utc_now
from etl.warehouse.base import Warehouse

#: A tracker change this close to the workflow's own write is taken to be that write.
SKEW = timedelta(minutes=5)


@dataclass
class SyncOutcome:
    """What one sync did; `errors` holds one line per failed call."""

    resolved: list[str] = field(default_factory=list)
    nudged: list[str] = field(default_factory=list)
    checked: int = 0
    errors: list[str] = field(default_factory=list)


def nudges_due(notify: Notify, quiet_since: datetime, now: datetime) -> int:
    """How many of the nudge thresholds the quiet period has passed."""
    return sum(1 for days in notify.nudge_days if now - quiet_since >= timedelta(days=days))


def sync(warehouse: Warehouse, notify: Notify, tracker: Tracker, now: datetime | None = None, daily: bool = False) -> SyncOutcome:
    """Read every open filed summary's item; resolve its alerts when the item is done, nudge it when quiet.

    *daily* skips the summaries already synced on this UTC day, so an hourly schedule syncs each once a day.
    """
    now = now or utc_now()
    out = SyncOutcome()
    alerts = {a["AlertId"]: a for a in read_alerts(warehouse)}
    for row in read_summaries(warehouse):
        if not row.get("TrackerId") or row.get("Status") != "open" or row.get("Tracker") != tracker.kind:
            continue
        synced = row.get("SyncedAt")
        if daily and synced is not None and synced.date() == now.date():
            continue
        out.checked += 1
        item_id = str(row["TrackerId"])
        try:
            item = guarded(tracker.where, tracker.get, item_id)
        except TrackerError as exc:
            out.errors.append(str(exc))
            continue
        row = {**row, "TrackerState": item.state, "SyncedAt": now}
        resolution = states.resolution(tracker.kind, item)
        if resolution:
            members = [alerts[i] for i in row.get("AlertIds") or [] if i in alerts and alerts[i].get("Status") == "open"]
            update_alerts(warehouse, members, now, Status="resolved", Resolution=resolution)
            write_summary(warehouse, {**row, "Status": "resolved", "Resolution": resolution}, now)
            out.resolved.append(f"{row['SummaryId']}: {tracker.kind} {item_id} {item.state}/{item.reason or '-'} -> {resolution}")
            continue
        quiet_since = row.get("QuietSince") or row.get("FiledAt") or now
        last_write = row.get("LastWriteAt") or row.get("FiledAt") or now
        if item.updated_at and item.updated_at > last_write + SKEW:
            quiet_since = max(quiet_since, item.updated_at)
        row["QuietSince"] = quiet_since
        due = nudges_due(notify, quiet_since, now)
        sent = int(row.get("Nudges") or 0)
        if due > sent:
            days = notify.nudge_days[due - 1]
            text = render.nudge_text(days, html_format=tracker.kind == "azure-devops")
            try:
                created = guarded(tracker.where, tracker.comment, item_id, text)
            except TrackerError as exc:
                out.errors.append(str(exc))
                write_summary(warehouse, row, now)
                continue
            row.update(Nudges=due, LastWriteAt=max(now, created) if created else now)
            out.nudged.append(f"{row['SummaryId']}: {tracker.kind} {item_id} quiet {days} days")
        write_summary(warehouse, row, now)
    return out
