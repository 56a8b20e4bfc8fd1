"""Staging one batch (etl/stage/batch.py): its id, what a re-staged window keeps, count-audit findings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

import etl.normalize
from etl.classify import classifier_for
from etl.config import Settings
from etl.privacy import scrubber_for
from etl.sources.base import Batch, Scope, Window
from etl.stage.batch import batch_id_of, open_outbox, open_quarantine, stage_batch
from etl.stage.outbox import BatchStatus, Manifest, batch_id_for
from tests.stage.test_workers import bundle_items

SCOPE = Scope("sim", "org", "proj")
WINDOW = Window(datetime(2026, 11, 1), datetime(2026, 11, 1, 6))
STARTED = datetime(2026, 11, 23, 6)


def stage(settings: Settings, batch: Batch, run_id: str = "run-1") -> Manifest:
    scrubber = scrubber_for(settings)
    lines: list[str] = []
    return stage_batch(batch, open_outbox(settings, scrubber), open_quarantine(settings, scrubber, lines.append),
                       scrubber, classifier_for(settings), status=BatchStatus.PENDING, run_id=run_id,
                       started_at=STARTED)


def test_a_batch_is_named_by_its_scope_and_window_or_by_its_key_without_one() -> None:
    assert batch_id_of(Batch(SCOPE, WINDOW, [])) == batch_id_for(
        "sim", "org", "proj", "2026-11-01T00:00:00", "2026-11-01T06:00:00")
    assert batch_id_of(Batch(Scope("inbox"), None, [], key="abc")) == batch_id_for("inbox", "", "", "abc", "")


def test_restaging_a_pending_window_keeps_its_first_staging_time_and_its_attempts(local_settings: Settings) -> None:
    first = stage(local_settings, Batch(SCOPE, WINDOW, []))
    outbox = open_outbox(local_settings, scrubber_for(local_settings))
    outbox.set_status(first, BatchStatus.PENDING, attempts=2, last_error="OSError: disk full")
    again = stage(local_settings, Batch(SCOPE, WINDOW, []), run_id="run-2")
    assert (again.batch_id, again.staged_at, again.run_id) == (first.batch_id, first.staged_at, "run-2")
    assert (again.attempts, again.last_error, again.status) == (2, "OSError: disk full", "pending")


def test_count_audit_findings_stay_on_the_committed_manifest_naming_the_source(local_settings: Settings) -> None:
    finding = "run 7: 33 of 40 results (totalTests 40)"
    manifest = stage(local_settings, Batch(SCOPE, WINDOW, [], incomplete=[finding]))
    outbox = open_outbox(local_settings, scrubber_for(local_settings))
    assert manifest.incomplete == outbox.get(manifest.batch_id).incomplete == [f"sim: {finding}"]


def test_staging_reads_a_builds_timeline_records_column_wise(local_settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    column_wise = etl.normalize.timeline_record_columns

    def spy(*args: Any) -> Any:
        out = column_wise(*args)
        read.append(type(out[0]).__name__)
        return out

    monkeypatch.setattr(etl.normalize, "timeline_record_columns", spy)
    manifest = stage(local_settings, Batch(SCOPE, WINDOW, bundle_items(1)))
    assert (read, manifest.counts["TimelineRecords"]) == (["Columns"], 4)
