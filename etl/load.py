"""Load one staged batch into the warehouse, then — only then — commit its watermark and run log row."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from etl.stage.outbox import TABLE_ORDER, Manifest, Outbox
from etl.state import commit_watermark
from etl.timeutil import to_utc_naive
from etl.warehouse.base import Warehouse

RowsProgress = Callable[[int], None]


def load_batch(warehouse: Warehouse, outbox: Outbox, manifest: Manifest,
               progress: RowsProgress | None = None) -> dict[str, int]:
    """Ingest every table of *manifest*'s batch, commit the watermark, write EtlRuns, mark it loaded.

    A failure in any table raises before the watermark moves: the batch stays pending and the next
    run loads it again (upserts by key, so nothing doubles).
    """
    loaded: dict[str, int] = {}
    for table in TABLE_ORDER:
        for chunk in outbox.rows(manifest.batch_id, table):
            n = warehouse.ingest(table, chunk, manifest.batch_id)
            loaded[table] = loaded.get(table, 0) + n
            if progress:
                progress(len(chunk))
    now = datetime.now(UTC).replace(tzinfo=None)
    run_id = manifest.run_id or manifest.batch_id
    if manifest.watermark_to:
        # An incomplete batch commits only up to its first incomplete build, so the next run reads it again.
        to = to_utc_naive(manifest.watermark_to)
        if manifest.watermark_hold:
            to = min(to, to_utc_naive(manifest.watermark_hold))
        commit_watermark(warehouse, manifest.source, manifest.organization, manifest.project,
                         to, run_id, now, manifest.batch_id)
    warehouse.ingest("EtlRuns", [{
        "RunId": manifest.batch_id,
        "Source": manifest.source,
        "Organization": manifest.organization,
        "Project": manifest.project,
        "StartedAt": manifest.started_at or manifest.staged_at,
        "FinishedAt": now,
        "WatermarkFrom": manifest.watermark_from,
        "WatermarkTo": manifest.watermark_to,
        "Builds": manifest.builds,
        "RowCounts": json.dumps(manifest.counts, sort_keys=True),
        "Quarantined": manifest.quarantined,
        "Errors": json.dumps(manifest.errors + manifest.audit),
        "Status": "incomplete" if manifest.audit else "loaded",
        "IngestedAt": manifest.staged_at,
    }], manifest.batch_id + "-run")
    outbox.set_status(manifest, "loaded", loaded_at=now.isoformat())
    return loaded
