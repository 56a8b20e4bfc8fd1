"""What an operator does with batches the run loop did not load: release held ones, retry or drop dead ones.

Each loads exactly as the run loop loads a batch (`BatchLoader`): facts, commit, known issues,
then loaded; the watermark advances when the batch's window joins the committed one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from etl.config import Settings
from etl.load import RunStatus, batch_row, record
from etl.load_step import BatchLoader, Progress, open_loader
from etl.privacy import scrubber_for
from etl.run_summary import Report, RunSummary, error_reporter, new_run_id
from etl.stage.batch import open_outbox
from etl.stage.outbox import BatchStatus, Manifest, Outbox
from etl.timeutil import utc_now


def _noop(_: str, __: int) -> None:
    return None


@contextlib.contextmanager
def _loading(settings: Settings, outbox: Outbox, progress: Progress, on_error: Report | None) -> Iterator[BatchLoader]:
    summary = RunSummary(run_id=new_run_id())
    with open_loader(settings, outbox, summary, error_reporter(summary, scrubber_for(settings), on_error),
                     progress) as loader:
        yield loader


def release_held(settings: Settings, batch_id: str | None = None, progress: Progress = _noop,
                 on_error: Report | None = None) -> list[tuple[str, RunStatus, int]]:
    """Load held batches (all, or one by id), oldest first, with their watermarks and known issues; (id, status, rows).

    Raises KeyError when *batch_id* names no held batch.
    """
    outbox = open_outbox(settings, scrubber_for(settings))
    held = outbox.batches(BatchStatus.HELD)
    if batch_id is not None:
        held = [m for m in held if m.batch_id == batch_id]
        if not held:
            raise KeyError(f"no held batch {batch_id!r} (see `ci-telemetry outbox list`)")
    out = []
    with _loading(settings, outbox, progress, on_error) as loader:
        for manifest in held:
            outbox.set_status(manifest, BatchStatus.PENDING)
            before = sum(loader.summary.loaded.values())
            status = loader.load_joined(manifest)
            out.append((manifest.batch_id, status, sum(loader.summary.loaded.values()) - before))
    return out


def retry_dead(settings: Settings, batch_id: str, on_error: Report | None = None) -> RunStatus:
    """Load a dead batch now, its attempts reset (`outbox retry`); raises KeyError when it is not dead."""
    outbox = open_outbox(settings, scrubber_for(settings))
    manifest = outbox.revive(batch_id)
    with _loading(settings, outbox, _noop, on_error) as loader:
        return loader.load_joined(manifest)


def drop_dead(settings: Settings, batch_id: str, reason: str) -> Manifest:
    """Delete a dead batch with the operator's reason (an EtlRuns row `dropped`); the next run reads its window again."""
    outbox = open_outbox(settings, scrubber_for(settings))
    manifest = outbox.drop(batch_id, reason)
    with _loading(settings, outbox, _noop, None) as loader:
        record(loader.warehouse, batch_row(manifest, RunStatus.DROPPED, utc_now(),
                                           [f"dropped by an operator: {reason}"]))
    return manifest
