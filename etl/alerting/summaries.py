"""Grouping alerts into alert summaries, as Treeherder does: one summary per suspect range.

A summary holds the alert-mode alerts of one metric and one definition (every platform) whose build ranges
(BuildBefore, BuildAfter] overlap. Alerts already in a recorded summary stay there; a new alert joins the
recorded summary it overlaps, else new alerts form new summaries. A flaky-test alert (no build range) is a
summary of its own. A summary's id is fixed when it is first
recorded, so a widened range never re-files it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

#: Kinds a tracker item is filed for; a summary of improvements only is recorded but not filed.
FILED_KINDS = ("regression", "flaky")
GROUP_KEYS = ("Organization", "Project", "Definition", "Metric")


@dataclass
class Summary:
    """Alerts of one suspect range, and the ledger row recorded for them (empty until recorded)."""

    summary_id: str
    key: tuple[str, str, str, str]
    build_first: int
    build_last: int
    alerts: list[dict] = field(default_factory=list)
    ledger: dict = field(default_factory=dict)

    @property
    def fileable(self) -> bool:
        return any(a.get("Kind") in FILED_KINDS for a in self.alerts)

    def ledger_row(self) -> dict:
        """The AlertSummaries row for this summary, keeping the tracker fields already recorded."""
        organization, project, definition, metric = self.key
        base = {
            "Tracker": "", "TrackerId": "", "TrackerUrl": "", "TrackerState": "", "Status": "open",
            "Resolution": "", "FiledAt": None, "QuietSince": None, "Nudges": 0, "LastWriteAt": None, "SyncedAt": None,
        }
        base.update({k: v for k, v in self.ledger.items() if k in base})
        return {
            "SummaryId": self.summary_id, "Organization": organization, "Project": project,
            "Definition": definition, "Metric": metric, "BuildFirst": self.build_first,
            "BuildLast": self.build_last, "AlertIds": sorted(a["AlertId"] for a in self.alerts), **base,
        }


def mode(alert: dict) -> str:
    """alert or monitor: the `mode` key `read_alerts` adds, else Details.mode (alert when absent)."""
    if alert.get("mode"):
        return str(alert["mode"])
    details = alert.get("Details")
    return str(details.get("mode") or "alert") if isinstance(details, dict) else "alert"


def _key(alert: dict) -> tuple[str, str, str, str]:
    return tuple(str(alert.get(k) or "") for k in GROUP_KEYS)  # type: ignore[return-value]


def _overlaps(a_first: int, a_last: int, b_first: int, b_last: int) -> bool:
    return a_first <= b_last and b_first <= a_last


def summary_id(key: tuple[str, str, str, str], build_first: int, first_alert: str) -> str:
    """Stable id of a new summary."""
    text = "|".join([*key, str(int(build_first)), first_alert])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def group(alerts: list[dict], recorded: list[dict]) -> list[Summary]:
    """Summaries of the alert-mode *alerts*: the *recorded* ones (AlertSummaries rows) with any alert that now
    overlaps them, then new summaries for the rest. Monitor-mode alerts are left to the digest."""
    by_id = {a["AlertId"]: a for a in alerts}
    summaries: list[Summary] = []
    assigned: set[str] = set()
    for row in recorded:
        ids = [i for i in (row.get("AlertIds") or []) if isinstance(i, str)]
        s = Summary(
            row["SummaryId"],
            (row.get("Organization") or "", row.get("Project") or "", row.get("Definition") or "", row.get("Metric") or ""),
            int(row.get("BuildFirst") or 0), int(row.get("BuildLast") or 0),
            [by_id[i] for i in ids if i in by_id], dict(row),
        )
        assigned.update(ids)
        summaries.append(s)
    fresh = sorted(
        (a for a in alerts if mode(a) == "alert" and a["AlertId"] not in assigned),
        key=lambda a: (_key(a), int(a.get("BuildBefore") or 0), int(a.get("BuildAfter") or 0), a["AlertId"]),
    )
    for alert in fresh:
        first, last = int(alert.get("BuildBefore") or 0), int(alert.get("BuildAfter") or 0)
        # A flaky test has no build range (0..0): each is its own summary, one item per test.
        alone = alert.get("Kind") == "flaky"
        home = None if alone else next(
            (s for s in summaries if s.key == _key(alert) and all(a.get("Kind") != "flaky" for a in s.alerts) and s.ledger.get("Status", "open") == "open"
             and _overlaps(first, last, s.build_first, s.build_last)),
            None,
        )
        if home is None:
            home = Summary(summary_id(_key(alert), first, alert["AlertId"]), _key(alert), first, last)
            summaries.append(home)
        home.alerts.append(alert)
        home.build_first, home.build_last = min(home.build_first, first), max(home.build_last, last)
    return summaries
