"""What the store remembers between runs: watermarks and the inbox's file ledger.

Watermarks say how far each (source, organization, project) has been loaded. They are kept in the
warehouse itself (table EtlWatermarks, read through `LatestEtlWatermarks`), written only after
every table of a batch has loaded, never moved backwards, and never moved past a gap: a batch
advances the watermark only when its window starts at or before it (`contiguous`), so a window
that failed to load, went dead or came back incomplete is read again by the next run.

The file ledger (EtlInboxFiles) holds the content hash of every inbox file read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from etl.timeutil import to_utc_naive
from etl.warehouse.base import Warehouse

WatermarkKey = tuple[str, str, str]


def read_watermarks(warehouse: Warehouse) -> dict[WatermarkKey, datetime]:
    """Every committed watermark by (source, organization, project), as naive UTC."""
    rows = warehouse.query_rows("LatestEtlWatermarks | project Source, Organization, Project, Watermark")
    out: dict[WatermarkKey, datetime] = {}
    for row in rows:
        value = to_utc_naive(row["Watermark"])
        if value is not None:
            out[(str(row["Source"]), str(row["Organization"]), str(row["Project"]))] = value
    return out


def read_files_seen(warehouse: Warehouse, source: str) -> frozenset[str]:
    """Content hashes of the files *source* has read (the inbox ledger)."""
    rows = warehouse.query_rows("declare query_parameters(source:string); LatestEtlInboxFiles "
                                "| where Source == source | project ContentHash", {"source": source})
    return frozenset(str(row["ContentHash"]) for row in rows)


def contiguous(window_start: Any, frontier: datetime | None) -> bool:
    """Whether a batch starting at *window_start* may advance a watermark standing at *frontier* (no gap)."""
    start = to_utc_naive(window_start) if window_start else None
    return start is None or frontier is None or start <= frontier


def watermark(warehouse: Warehouse, source: str, organization: str, project: str) -> datetime | None:
    """The committed watermark of one project, or None when it was never loaded."""
    return read_watermarks(warehouse).get((source, organization, project))


def commit_watermark(warehouse: Warehouse, source: str, organization: str, project: str, value: Any,
                     run_id: str, now: datetime, batch_id: str) -> datetime | None:
    """Advance the watermark to *value* unless it is already later; returns the committed value."""
    new = to_utc_naive(value)
    current = watermark(warehouse, source, organization, project)
    if new is None or (current is not None and current >= new):
        return current
    warehouse.ingest("EtlWatermarks", [{
        "Source": source, "Organization": organization, "Project": project, "Watermark": new,
        "RunId": run_id, "UpdatedAt": now, "IngestedAt": now,
    }], batch_id=f"{batch_id}-watermark")
    return new
