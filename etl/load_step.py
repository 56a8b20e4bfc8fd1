"""The load step of a run, one staged batch at a time: load the facts, commit, derive, mark loaded.

Any failure in it is that batch's alone: the batch stays pending with the attempt counted (the
next run retries it, once per run) and after `staging.max_load_attempts` it moves to
`outbox/dead/` (the dead-letter queue: `outbox retry` or `outbox drop`). A batch is loaded at most
once per run. The watermark advances only when the batch's window joins the committed one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from etl.config import Settings
from etl.derive import derive_known_issues, known_issue_rules
from etl.errors import one_line
from etl.load import RunStatus, batch_row, commit_batch, etl_runs_row, load_facts, mark_done, record
from etl.run_summary import Report, RunSummary
from etl.secret_refs import mask
from etl.sources.base import Scope, Start
from etl.stage.memory import bound_allocator, release_free_memory
from etl.stage.outbox import BatchStatus, Manifest, Outbox
from etl.state import contiguous, read_files_seen, read_watermarks
from etl.timeutil import utc_now
from etl.warehouse import open_warehouse
from etl.warehouse.base import Warehouse

log = logging.getLogger(__name__)
Progress = Callable[[str, int], None]


@dataclass
class BatchLoader:
    """Loads staged batches into one open store, counting what it does in the run's summary."""

    settings: Settings
    warehouse: Warehouse
    outbox: Outbox
    summary: RunSummary
    report: Report
    progress: Progress
    started_at: datetime
    #: Batch ids loaded or attempted in this run: each is tried at most once per run.
    attempted: set[str] = field(default_factory=set)
    _rules: list[Any] | None = None

    def load(self, manifest: Manifest, advance: bool) -> RunStatus:
        """Load, commit, derive, mark loaded; any failure leaves the batch pending (or dead after N attempts)."""
        self.attempted.add(manifest.batch_id)
        try:
            counts = load_facts(self.warehouse, self.outbox, manifest, progress=lambda n: self.progress("rows", n))
            status = commit_batch(self.warehouse, self.outbox, manifest, advance=advance)
            self.summary.known_issue_rows += derive_known_issues(self.warehouse, self.outbox, manifest, self.rules())
            mark_done(self.outbox, manifest, status)
        except Exception as exc:  # any load failure is this batch's alone; the next batches go on
            return self.failed(manifest, one_line(exc))
        finally:
            release_free_memory()
        self.summary.add_loaded(counts)
        if status is RunStatus.INCOMPLETE:
            self.summary.incomplete_batches.append(manifest.batch_id)
        return status

    def load_joined(self, manifest: Manifest) -> RunStatus:
        """Load a batch outside the scope loop (resumed, released, retried): it advances the watermark if it joins it."""
        mark = read_watermarks(self.warehouse).get((manifest.source, manifest.organization, manifest.project))
        return self.load(manifest, advance=contiguous(manifest.watermark_from, mark))

    def failed(self, manifest: Manifest, reason: str) -> RunStatus:
        """Count the failed attempt; after the last allowed one the batch moves to outbox/dead/."""
        limit = self.settings.staging.max_load_attempts
        manifest.attempts += 1
        manifest.last_error = mask(reason)
        dead = manifest.attempts >= limit
        if dead:
            self.outbox.kill(manifest)
            self.summary.dead_batches.append(manifest.batch_id)
        else:
            self.outbox.set_status(manifest, BatchStatus.PENDING)
            self.summary.load_failures.append(manifest.batch_id)
        status = RunStatus.DEAD if dead else RunStatus.RETRYING
        self.report(f"batch {manifest.batch_id} ({manifest.where}): load attempt {manifest.attempts} of {limit} "
                    f"failed: {reason}" + ("; moved to outbox/dead" if dead else "; retried by the next run"))
        try:  # the store may be what failed; the manifest already holds the attempt
            record(self.warehouse, batch_row(manifest, status, utc_now(), [manifest.last_error]))
        except Exception:  # best effort, whatever the store raises: the outbox is the record of truth here
            log.debug("cannot record the failed load of %s", manifest.batch_id, exc_info=True)
        return status

    def rules(self) -> list[Any]:
        """The known-issue rules, read once per run (on the first batch that loads)."""
        if self._rules is None:
            self._rules = known_issue_rules(self.settings, self.report)
        return self._rules

    def start_for(self, scope: Scope, since: datetime | None) -> Start:
        """The committed watermark (or --since) and, for ledger-keeping sources, the files already read."""
        mark = since or read_watermarks(self.warehouse).get((scope.source, scope.organization, scope.project))
        return Start(mark, read_files_seen(self.warehouse, scope.source))

    def record_scope(self, scope: Scope, status: RunStatus, since: datetime | None = None,
                     errors: list[str] | None = None) -> None:
        """An EtlRuns row for a scope with no batch (nothing new, or failed); freshness monitors read these."""
        record(self.warehouse, etl_runs_row(
            run_id=f"{self.summary.run_id}-{scope.source}", source=scope.source, organization=scope.organization,
            project=scope.project, status=status, started_at=self.started_at, finished_at=utc_now(),
            watermark_from=since, watermark_to=since, errors=errors or []))


@contextlib.contextmanager
def open_loader(settings: Settings, outbox: Outbox, summary: RunSummary, report: Report, progress: Progress,
                started_at: datetime | None = None) -> Iterator[BatchLoader]:
    """A loader over the store, open (schema applied on a local store) for the duration of a run or command."""
    bound_allocator()  # before the first batch is read: a run that only loads pending batches needs it too
    warehouse = open_warehouse(settings)
    try:
        limit = getattr(settings.warehouse, "load_memory_limit", None)  # the local store's; a cluster has none
        if limit:
            # Loading needs a row group's worth: DuckDB's cache would otherwise grow with the store.
            warehouse.set_memory_limit(limit)  # type: ignore[attr-defined]
        if warehouse.applies_schema_on_run:
            warehouse.apply_schema()  # idempotent; lets `etl` run on a fresh store
        yield BatchLoader(settings, warehouse, outbox, summary, report, progress, started_at or utc_now())
    finally:
        warehouse.close()
