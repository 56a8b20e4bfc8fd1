"""Stage one batch: normalize every item a source yields and write its rows to the outbox.

A bad item is quarantined alone (normalizing it failed, or a value in it cannot be serialized);
the batch goes on. Re-staging a window keeps its first staging time, so its rows stay
byte-identical, and keeps the load attempts a pending batch already used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from etl.classify import Classifier
from etl.config import Settings
from etl.normalize.context import NormalizeContext
from etl.privacy import Scrubber, apply_policy, scrub_payload
from etl.secret_refs import mask
from etl.sources.base import Batch
from etl.sources.inbox import LEDGER_TABLE
from etl.stage.memory import bound_allocator, release_free_memory
from etl.stage.outbox import BatchStatus, Manifest, Outbox, batch_id_for
from etl.stage.prepare import prepare_item
from etl.stage.quarantine import Quarantine
from etl.stage.workers import StagingWorkers
from etl.timeutil import utc_now


def open_outbox(settings: Settings, scrubber: Scrubber) -> Outbox:
    """The configured outbox; staged rows get their FIELD_POLICY treatment as they are written."""
    return Outbox(settings.path(settings.staging.dir), rows_policy=functools.partial(apply_policy, scrubber))


def open_quarantine(settings: Settings, scrubber: Scrubber, report: Callable[[str], None]) -> Quarantine:
    """The configured quarantine: payloads are scrubbed before they are kept, each one *report*ed as a line."""
    return Quarantine(settings.path(settings.staging.dir), scrub=functools.partial(scrub_payload, scrubber),
                      report=report)


def batch_id_of(batch: Batch) -> str:
    """The batch's deterministic id: its scope and watermark window (or its key, for windowless sources)."""
    scope, window = batch.scope, batch.window
    wm_from = window.start.isoformat() if window else None
    wm_to = window.end.isoformat() if window else None
    return batch_id_for(scope.source, scope.organization, scope.project, wm_from or batch.key, wm_to or "")


def stage_batch(batch: Batch, outbox: Outbox, quarantine: Quarantine, scrubber: Scrubber, classifier: Classifier,
                *, status: BatchStatus, run_id: str, started_at: datetime,
                workers: StagingWorkers | None = None) -> Manifest:
    """Normalize and stage every item of *batch* (its builds prepared by *workers* when given), then commit it
    with *status*; its manifest.

    The manifest counts the payloads quarantined and holds their lines; count-audit findings
    (`batch.incomplete`) land, masked, in `manifest.incomplete`: the batch loads, is marked
    incomplete, and its window is read again.
    """
    scope, window = batch.scope, batch.window
    batch_id = batch_id_of(batch)
    previous = outbox.existing(batch_id)
    manifest = Manifest(batch_id, scope.source, scope.organization, scope.project,
                        window.start.isoformat() if window else None, window.end.isoformat() if window else None,
                        previous.staged_at if previous else utc_now().isoformat(), builds=batch.builds,
                        run_id=run_id, started_at=started_at.isoformat())
    if previous is not None and previous.status == BatchStatus.PENDING:
        manifest.attempts, manifest.last_error = previous.attempts, previous.last_error
    bound_allocator()  # before the source's worker threads start reading the batch's items
    staged = outbox.start(manifest)
    ctx = NormalizeContext(scope.source, scope.organization, datetime.fromisoformat(manifest.staged_at),
                           scrubber, classifier, quarantine, columns=True)
    before = quarantine.count
    prepared_items = (workers.prepare(ctx, batch.items, staged.policy) if workers is not None else
                      ((item, prepare_item(ctx, item, staged.policy)) for item in batch.items))
    try:
        for item, prepared in prepared_items:
            if prepared.failure is not None:
                ctx.quarantine(scope.source, item.obj, "(payload)", prepared.failure, None)
                continue
            staged.add_typed(prepared.raw_line, prepared.typed)
            if prepared.has_rows:  # a file whose rows loaded is not read again; a rejected one is
                staged.add_rows(LEDGER_TABLE, item.ledger)
    except BaseException:
        staged.abort()  # no half-written batch: a crash here stages the window again next run
        raise
    manifest.quarantined = quarantine.count - before
    manifest.errors = quarantine.lines[before:]
    manifest.incomplete = [mask(f"{scope.source}: {line}") for line in batch.incomplete]
    committed = staged.commit(status)
    release_free_memory()
    return committed
