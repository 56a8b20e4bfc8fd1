"""The workflow's state in the store: alerts read, summaries and digests recorded, Alerts rows updated.

Every write re-ingests a whole row with a newer IngestedAt; the Latest*() views return the newest state, so a
write repeated after a crash changes nothing.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any

import pandas as pd

from etl.timeutil import utc_now
from etl.warehouse.base import Warehouse, run_query_file


def _plain(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _dynamic(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _rows(frame: pd.DataFrame, dynamic: tuple[str, ...]) -> list[dict]:
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {k: _plain(v) for k, v in record.items()}
        for name in dynamic:
            row[name] = _dynamic(row.get(name))
        rows.append(row)
    return rows


def read_alerts(warehouse: Warehouse) -> list[dict]:
    """Every alert in its newest state, with Details as a dict and a `mode` key (alert or monitor)."""
    rows = _rows(run_query_file(warehouse, "alerts_to_notify"), ("Details",))
    for row in rows:
        details = row.get("Details") if isinstance(row.get("Details"), dict) else {}
        row["mode"] = str(details.get("mode") or "alert")
    return rows


def read_summaries(warehouse: Warehouse) -> list[dict]:
    """Every recorded alert summary in its newest state."""
    return _rows(run_query_file(warehouse, "alert_summaries"), ("AlertIds",))


def read_digests(warehouse: Warehouse) -> list[dict]:
    """Every recorded digest."""
    return _rows(run_query_file(warehouse, "alert_digests"), ("AlertIds",))


def write_summary(warehouse: Warehouse, row: dict, now: datetime | None = None) -> None:
    """Record one summary's state now (one call per change, so a crash loses at most the change in flight)."""
    row = {**row, "IngestedAt": now or utc_now()}
    warehouse.ingest("AlertSummaries", [row], batch_id=f"summary-{row['SummaryId']}-{uuid.uuid4().hex[:8]}")


def write_digest(warehouse: Warehouse, row: dict, now: datetime | None = None) -> None:
    """Record that one channel's digest for one day was posted."""
    row = {**row, "IngestedAt": now or utc_now()}
    warehouse.ingest("AlertDigests", [row], batch_id=f"digest-{row['Channel']}-{row['Day']:%Y%m%d}")


_ALERT_COLUMNS_DROPPED = ("mode",)


def update_alerts(warehouse: Warehouse, alerts: list[dict], now: datetime | None = None, **changes: Any) -> None:
    """Re-ingest *alerts* (rows from `read_alerts`) with *changes* applied (e.g. Url, Status, Resolution)."""
    if not alerts:
        return
    stamp = now or utc_now()
    rows = [
        {**{k: v for k, v in a.items() if k not in _ALERT_COLUMNS_DROPPED}, **changes, "IngestedAt": stamp}
        for a in alerts
    ]
    warehouse.ingest("Alerts", rows, batch_id=f"alertflow-{uuid.uuid4().hex[:12]}")
