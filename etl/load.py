"""Load one staged batch into the warehouse, then — only then — commit its ledgers, watermark and run-log row.

`etl_runs_row` is the one place an `EtlRuns` row is built, whatever happened: a batch loaded (or
loaded incomplete), a load attempt failed (retrying), a batch went dead or was dropped, a source
had nothing new or failed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from etl.stage.outbox import COMMIT_TABLES, TABLE_ORDER, BatchStatus, Manifest, Outbox
from etl.state import commit_watermark
from etl.timeutil import utc_now
from etl.warehouse.base import Warehouse

RowsProgress = Callable[[int], None]


class RunStatus(StrEnum):
    """The `Status` of an `EtlRuns` row (the stored strings are the values)."""

    LOADED = "loaded"
    INCOMPLETE = "incomplete"
    NO_NEW_DATA = "no new data"
    FAILED = "failed"
    RETRYING = "retrying"
    DEAD = "dead"
    DROPPED = "dropped"
    HELD = "held"
    DRY_RUN = "dry-run"


def etl_runs_row(
    *,
    run_id: str,
    source: str,
    organization: str,
    project: str,
    status: RunStatus,
    started_at: Any,
    finished_at: datetime,
    watermark_from: Any = None,
    watermark_to: Any = None,
    builds: int = 0,
    counts: dict[str, int] | None = None,
    quarantined: int = 0,
    errors: Iterable[str] = (),
    attempts: int = 0,
) -> dict[str, Any]:
    """The one shape of an EtlRuns row."""
    return {
        "RunId": run_id, "Source": source, "Organization": organization, "Project": project,
        "StartedAt": started_at, "FinishedAt": finished_at, "WatermarkFrom": watermark_from,
        "WatermarkTo": watermark_to, "Builds": builds, "RowCounts": json.dumps(counts or {}, sort_keys=True),
        "Quarantined": quarantined, "Errors": json.dumps(list(errors)), "Status": str(status),
        "Attempts": attempts, "IngestedAt": finished_at,
    }


def batch_row(manifest: Manifest, status: RunStatus, now: datetime, errors: Iterable[str] = ()) -> dict[str, Any]:
    """The EtlRuns row of one batch (RunId is the batch id, so its newest state replaces the older ones)."""
    return etl_runs_row(
        run_id=manifest.batch_id, source=manifest.source, organization=manifest.organization,
        project=manifest.project, status=status, started_at=manifest.started_at or manifest.staged_at,
        finished_at=now, watermark_from=manifest.watermark_from, watermark_to=manifest.watermark_to,
        builds=manifest.builds, counts=manifest.counts, quarantined=manifest.quarantined,
        errors=[*manifest.errors, *manifest.incomplete, *errors], attempts=manifest.attempts)


def record(warehouse: Warehouse, row: dict[str, Any]) -> None:
    """Write one EtlRuns row (its own idempotency tag: the run id and status)."""
    warehouse.ingest("EtlRuns", [row], f"{row['RunId']}-{row['Status']}-run")


def load_facts(warehouse: Warehouse, outbox: Outbox, manifest: Manifest,
               progress: RowsProgress | None = None) -> dict[str, int]:
    """Ingest every fact table of the batch (upserts by key: loading twice changes nothing); rows per table."""
    loaded: dict[str, int] = {}
    # A backend that batches commits (the local store's `bulk`) loads the row groups in few transactions.
    bulk = getattr(warehouse, "bulk", None)
    # A backend that reads a staged file itself (the local store's `read_parquet`) scans no Python objects.
    ingest_staged = getattr(warehouse, "ingest_staged", None)
    with bulk() if bulk is not None else contextlib.nullcontext():
        for table in TABLE_ORDER:
            path = outbox.staged_file(manifest.batch_id, table)
            if path is None:
                continue
            if ingest_staged is not None:
                loaded[table] = ingest_staged(table, path, manifest.batch_id, progress)
                continue
            # Typed Arrow chunks straight from the staged Parquet (one row group at a time: bounded memory).
            for index, chunk in enumerate(outbox.tables(manifest.batch_id, table)):
                # Each chunk is its own idempotency key (the row groups of a staged file are fixed): on the
                # cluster a second chunk tagged like the first would be skipped as already ingested.
                tag = manifest.batch_id if index == 0 else f"{manifest.batch_id}.{index}"
                # Staged rows were treated by the privacy policy as they were staged; skip the second pass.
                loaded[table] = loaded.get(table, 0) + warehouse.ingest_treated(table, chunk, tag)
                if progress:
                    progress(chunk.num_rows)
    return loaded


def commit_batch(warehouse: Warehouse, outbox: Outbox, manifest: Manifest, *, advance: bool,
                 now: datetime | None = None) -> RunStatus:
    """After the facts: the ledgers, the watermark (when *advance*), the EtlRuns row. Returns the row's status.

    An incomplete batch never advances the watermark: its window is read again by the next run.
    """
    now = now or utc_now()
    for table in COMMIT_TABLES:
        for chunk in outbox.rows(manifest.batch_id, table):
            rows = [{**r, "BatchId": manifest.batch_id, "SeenAt": manifest.staged_at,
                     "IngestedAt": manifest.staged_at} for r in chunk]
            warehouse.ingest(table, rows, f"{manifest.batch_id}-{table}")
    status = RunStatus.INCOMPLETE if manifest.incomplete else RunStatus.LOADED
    if advance and status is RunStatus.LOADED and manifest.watermark_to:
        commit_watermark(warehouse, manifest.source, manifest.organization, manifest.project,
                         manifest.watermark_to, manifest.run_id or manifest.batch_id, now, manifest.batch_id)
    record(warehouse, batch_row(manifest, status, now))
    return status


def mark_done(outbox: Outbox, manifest: Manifest, status: RunStatus, now: datetime | None = None) -> None:
    """The batch's last step: its manifest says loaded (or incomplete); a crash before this loads it again."""
    final = BatchStatus.INCOMPLETE if status is RunStatus.INCOMPLETE else BatchStatus.LOADED
    outbox.set_status(manifest, final, loaded_at=(now or utc_now()).isoformat(), last_error=None)


def load_batch(warehouse: Warehouse, outbox: Outbox, manifest: Manifest,
               progress: RowsProgress | None = None) -> dict[str, int]:
    """Facts, then commit (advancing the watermark), then mark loaded — one batch on its own (benchmarks)."""
    counts = load_facts(warehouse, outbox, manifest, progress)
    status = commit_batch(warehouse, outbox, manifest, advance=True)
    mark_done(outbox, manifest, status)
    return counts
