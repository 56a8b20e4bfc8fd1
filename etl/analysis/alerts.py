"""The Alerts lifecycle in the store: record new detections once, list them, resolve them.

An alert is created `open` with an empty Resolution. Detection re-runs find the same AlertId and leave the
stored row alone (a resolved alert stays resolved). `resolve` re-ingests the row with Status `resolved` and a
Resolution; the deduplicating view LatestAlerts returns the newest state.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pandas as pd

from etl.warehouse.base import Warehouse, run_query_file

RESOLUTIONS = ("FIXED", "WONTFIX", "INVALID", "WORKSFORME")
_ALL_TIME = {"start": datetime(1970, 1, 1), "end": datetime(2100, 1, 1)}


class AlertError(ValueError):
    """An alert operation that cannot be done; the message is one line."""


def list_alerts(warehouse: Warehouse, status: str = "") -> pd.DataFrame:
    """Alerts, newest detection first; *status* ("open", "resolved") filters, "" means all."""
    return run_query_file(warehouse, "alerts", {**_ALL_TIME, "status": status})


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
    row.update(Status="resolved", Resolution=resolution, IngestedAt=now or datetime.now(UTC).replace(tzinfo=None))
    warehouse.ingest("Alerts", [row], batch_id=f"resolve-{alert_id}-{uuid.uuid4().hex[:8]}")
    return row


def detect_and_record(warehouse: Warehouse, monitors_path, period, detected_at: datetime | None = None) -> tuple[pd.DataFrame, int, int]:
    """Detect changes in every monitored series of *period* (MetricSamples and build durations) and record the
    alert-mode ones; returns (all changes, new alerts, already known)."""
    from etl.analysis.data import load
    from etl.analysis.monitors import load_monitors
    from etl.analysis.regressions import builds_as_samples, detect_regressions, to_alert_rows

    monitors = load_monitors(monitors_path)
    samples = load(warehouse, "metric_series", period)
    builds = load(warehouse, "builds_in_period", period)
    frames = [f for f in (samples, builds_as_samples(builds) if len(builds) else None) if f is not None and len(f)]
    combined = pd.concat(frames, ignore_index=True) if frames else samples
    found = detect_regressions(combined, monitors, detected_at)
    new, known = record_alerts(warehouse, to_alert_rows(found))
    return found, new, known
