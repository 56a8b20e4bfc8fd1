"""The Alerts lifecycle in the store: record new detections once, list them, resolve them.

An alert is created `open` with an empty Resolution. Detection re-runs find the same AlertId and leave the
stored row alone (a resolved alert stays resolved). `resolve` re-ingests the row with Status `resolved` and a
Resolution; the deduplicating view LatestAlerts returns the newest state.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from etl.timeutil import utc_now

if TYPE_CHECKING:  # pandas and the warehouse load only when an alert is read or written (fast CLI startup)
    import pandas as pd

    from etl.warehouse.base import Warehouse

RESOLUTIONS = ("FIXED", "WONTFIX", "INVALID", "WORKSFORME")
_ALL_TIME = {"start": datetime(1970, 1, 1), "end": datetime(2100, 1, 1)}


class AlertError(ValueError):
    """An alert operation that cannot be done; the message is one line."""


def list_alerts(warehouse: Warehouse, status: str = "", kind: str = "", mode: str = "") -> pd.DataFrame:
    """Alerts (newest state), newest detection first, with a Mode column (alert or monitor, from Details.mode).

    *status* ("open", "resolved"), *kind* (regression, improvement, change, flaky) and *mode* filter; ""
    means all.
    """
    from etl.warehouse.base import run_query_file

    frame = run_query_file(warehouse, "alerts", {**_ALL_TIME, "status": status, "alertKind": kind})
    frame["Mode"] = [_mode(d) for d in frame["Details"]] if "Details" in frame else ""
    return frame[frame["Mode"] == mode].reset_index(drop=True) if mode else frame


def _mode(details: object) -> str:
    if isinstance(details, str):
        import json

        try:
            details = json.loads(details)
        except ValueError:
            return "alert"
    return str(details.get("mode") or "alert") if isinstance(details, dict) else "alert"


def record_alerts(warehouse: Warehouse, rows: list[dict]) -> tuple[int, int]:
    """Store the alerts not stored yet; returns (new, already known). Known alerts keep their lifecycle state."""
    if not rows:
        return 0, 0
    known = set(list_alerts(warehouse)["AlertId"])
    fresh = {r["AlertId"]: r for r in rows if r["AlertId"] not in known}
    if fresh:
        warehouse.ingest("Alerts", list(fresh.values()), batch_id=f"alerts-{uuid.uuid4().hex[:12]}")
    return len(fresh), len(rows) - len(fresh)


def resolve_alert(warehouse: Warehouse, alert_id: str, resolution: str, now: datetime | None = None) -> dict:
    """Mark an alert resolved with one of FIXED, WONTFIX, INVALID, WORKSFORME; returns the new row."""
    import pandas as pd

    resolution = resolution.upper()
    if resolution not in RESOLUTIONS:
        raise AlertError(f"--resolution {resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    found = warehouse.query(
        "declare query_parameters(id:string); LatestAlerts | where AlertId == id", {"id": alert_id}
    )
    if found.empty:
        raise AlertError(f"alert {alert_id!r}: not found (see `ci-telemetry alerts list`)")
    row = found.iloc[0].to_dict()
    row = {k: (None if (not isinstance(v, (list, dict)) and pd.isna(v)) else v) for k, v in row.items()}
    row.update(Status="resolved", Resolution=resolution, IngestedAt=now or utc_now())
    warehouse.ingest("Alerts", [row], batch_id=f"resolve-{alert_id}-{uuid.uuid4().hex[:8]}")
    return row


def flaky_rows(stats: pd.DataFrame, home: pd.DataFrame, detected_at: datetime) -> list[dict]:
    """One Alerts row (Kind flaky) per test that *stats* (flaky.test_stats or stats_from_counts) calls flaky;
    *home*: per TestName (index) the Organization, Project and Definition the alert is filed under.

    The AlertId is a hash of (organization, project, test), so a test stays one alert across runs; Before is
    0, After and Score its flip rate, ChangeAt the first result seen in the period.
    """
    import pandas as pd

    from etl.analysis.regressions import alert_id

    flaky = stats[stats["Kind"] == "flaky"]
    rows = []
    for r in flaky.itertuples(index=False):
        org, project, definition = (str(v or "") for v in home.loc[r.TestName, ["Organization", "Project", "Definition"]])
        rows.append({
            "AlertId": alert_id(org, "flaky", f"{project}/{r.TestName}", 0), "Kind": "flaky", "Metric": "flip_rate",
            "Series": r.TestName, "Organization": org, "Project": project, "Definition": definition, "Platform": "",
            "Technique": "flaky", "DetectedAt": detected_at, "ChangeAt": pd.Timestamp(r.FirstSeen).to_pydatetime(),
            "BuildBefore": 0, "BuildAfter": 0, "CommitBefore": "", "CommitAfter": "",
            "Before": 0.0, "After": float(r.FlipRate), "ChangePercent": 0.0, "Direction": "flaky",
            "Score": round(float(r.FlipRate), 4), "Status": "open", "Resolution": "", "Url": "",
            "Details": {"mode": "alert", "results": int(r.Results), "failed": int(r.Failed), "commits": int(r.Commits),
                        "flaky_commits": int(r.FlakyCommits), "passed_on_rerun": int(r.PassedOnRerun),
                        "last_seen": str(r.LastSeen)},
            "IngestedAt": detected_at,
        })
    return rows


def detect_and_record(
    warehouse: Warehouse, monitors_path, period, detected_at: datetime | None = None, flaky_thresholds=None
) -> tuple[pd.DataFrame, int, int]:
    """The production detection step: every monitor of monitors.yaml over the series of *period*
    (MetricSamples and build durations), and the flakiness rules over its test results; records every change
    and flaky test in Alerts once (mode alert and monitor alike; Details.mode tells them apart).

    Returns (all rows found, new alerts, already known). Re-running it adds nothing.
    """
    import pandas as pd

    from etl.analysis.data import load
    from etl.analysis.flaky import FlakyThresholds, outage_parameters, stats_from_counts
    from etl.analysis.monitors import load_monitors
    from etl.analysis.regressions import builds_as_samples, detect_regressions, to_alert_rows

    detected_at = detected_at or utc_now()
    monitors = load_monitors(monitors_path)
    samples = load(warehouse, "metric_series", period)
    builds = load(warehouse, "builds_in_period", period)
    frames = [f for f in (samples, builds_as_samples(builds) if len(builds) else None) if f is not None and len(f)]
    combined = pd.concat(frames, ignore_index=True) if frames else samples
    rows = to_alert_rows(detect_regressions(combined, monitors, detected_at))
    # The store counts per test (a period holds millions of results); the same figures as flaky.test_stats.
    thresholds = flaky_thresholds or FlakyThresholds()
    counts = outage_parameters(thresholds)
    per_test = load(warehouse, "test_stats_in_period", period, **counts)
    stats = stats_from_counts(per_test, load(warehouse, "test_hard_commits_in_period", period, **counts), thresholds)
    rows += flaky_rows(stats, per_test.set_index("TestName"), detected_at)
    new, known = record_alerts(warehouse, rows)
    return pd.DataFrame(rows), new, known
