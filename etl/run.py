"""One ETL run: for each source, for each batch — stage, load, commit the watermark, derive.

    resume the pending batches a previous run left (a crash, a failed load)
    for each configured source (the registry maps its `kind` to a reader):
        for each scope (source / organization / project) and each of its batches:
            stage     extract and normalize every item into the outbox (etl/stage/batch.py), with
                      `staging.workers` processes preparing its builds (etl/stage/workers.py)
            load      ingest the fact tables, upserts by key (etl/load_step.py), on a thread of its own
                      while the next batch stages (etl/load_thread.py)
            commit    ledgers, the watermark (only past a complete, gap-free window), the EtlRuns row
            derive    known-issue matching over the batch's builds (etl/derive.py), then marked loaded

Isolation: an item that cannot be read, normalized or staged is quarantined and the batch goes
on; a load that fails leaves the batch pending (retried once per later run) and after
`staging.max_load_attempts` moves it to `outbox/dead/`; a scope or source that cannot be read
stops alone with one line and an EtlRuns row. The watermark never moves past a window that did not
load completely, so the next run reads it again. The run exits non-zero when anything failed.
Held and dead batches are released, retried or dropped by etl/outbox_ops.py.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from etl.classify import Classifier, classifier_for
from etl.collector import rare_collections
from etl.config import Settings
from etl.errors import one_line
from etl.load import RunStatus
from etl.load_step import BatchLoader, Progress, open_loader
from etl.load_thread import LoadThread, load_thread
from etl.outbox_ops import release_held
from etl.privacy import Scrubber, scrubber_for
from etl.run_summary import RunSummary, SourceOutcome, error_reporter, new_run_id
from etl.secret_refs import mask
from etl.sources import SourceEnv, open_source
from etl.sources.base import Batch, Scope, ScopeFailed, Source, SourceFailed, Start
from etl.stage.batch import batch_id_of, open_outbox, open_quarantine, stage_batch
from etl.stage.outbox import BatchStatus, Manifest, Outbox
from etl.stage.quarantine import Quarantine
from etl.stage.workers import StagingWorkers, staging_workers
from etl.state import contiguous
from etl.timeutil import to_utc_naive, utc_now

__all__ = ["Progress", "RunOptions", "RunSummary", "SourceOutcome", "release_held", "run_etl"]
log = logging.getLogger(__name__)


def _noop(_: str, __: int) -> None:
    return None


@dataclass
class RunOptions:
    """What the command line can change for one run."""

    since: datetime | None = None
    dry_run: bool = False


def run_etl(settings: Settings, options: RunOptions | None = None, progress: Progress = _noop,
            on_error: Callable[[str], None] | None = None) -> RunSummary:
    """Run the ETL once for every configured source; always returns a summary (see the module docstring)."""
    options = options or RunOptions()
    run = _Run.start(settings, options, progress, on_error)
    try:
        with rare_collections(), staging_workers(settings.staging.workers, run.scrubber, run.classifier) as workers, \
                open_loader(settings, run.outbox, run.summary, run.report, progress, run.started_at) as loader, \
                load_thread(loader) as loads:
            run.workers, run.loading = workers, loads
            if run.loads:
                for manifest in run.outbox.batches(BatchStatus.PENDING):  # oldest first
                    loader.load_joined(manifest)
                    run.summary.resumed_batches.append(manifest.batch_id)
            for cfg in settings.sources:
                _run_source(run, loader, cfg)
            loads.wait()
            if not options.dry_run:
                run.outbox.prune(settings.staging.keep_loaded_batches)
    finally:
        run.summary.finish(run.quarantine.count)
    return run.summary


def _run_source(run: _Run, loader: BatchLoader, cfg: Any) -> None:
    """Every scope of one source; a failing scope or source stops alone with one line and an EtlRuns row."""
    scope = Scope(cfg.name)
    try:
        with open_source(cfg, SourceEnv(run.settings, run.progress)) as source:
            scopes = source.scopes()
            # Read before the source's first batch loads: the store is busy while a batch loads, and a scope's
            # start is its own (its watermark; ledger-keeping sources have one scope).
            starts = [loader.start_for(s, run.options.since) for s in scopes]
            for scope, start in zip(scopes, starts, strict=True):
                try:
                    _run_scope(run, loader, source, scope, start)
                except ScopeFailed as exc:
                    _failed(run, loader, scope, str(exc))
    except SourceFailed as exc:
        _failed(run, loader, scope, str(exc))
    except Exception as exc:  # a bug or an unforeseen error in one source must not stop the others
        log.debug("source %s failed", cfg.name, exc_info=True)
        _failed(run, loader, scope, f"{cfg.name}: unexpected {one_line(exc)}")


def _run_scope(run: _Run, loader: BatchLoader, source: Source, scope: Scope, start: Start) -> None:
    """Stage and load the scope's batches in order, each batch staging while the one before it loads (its
    first, while the previous scope's last loads); the watermark follows only an unbroken run of loaded windows."""
    outcome = run.summary.add_outcome(scope)
    window, loads = _Window(start.watermark, outcome), run.loading
    assert loads is not None  # set by run_etl
    try:
        for batch in source.batches(scope, start):
            manifest = _stage(run, loader, batch, outcome)
            loads.wait()  # the batch that loaded while this one staged
            if manifest is None:  # dead, or its load already failed in this run: later windows must not jump it
                window.gap = True
                continue
            if manifest.status != BatchStatus.PENDING:
                continue  # held or dry run
            loads.start(manifest, advance=window.joins(manifest), then=functools.partial(window.settle, manifest))
            if not run.settings.staging.load_beside_staging:
                loads.wait()
    except BaseException:
        loads.wait()  # a failing scope's line and row come after its loads
        raise
    if outcome.batches == 0:
        outcome.status = RunStatus.NO_NEW_DATA
        if not run.options.dry_run:
            loader.record_scope(scope, RunStatus.NO_NEW_DATA, since=start.watermark)


@dataclass
class _Window:
    """How far a scope's watermark may move: to the end of an unbroken run of loaded windows."""

    frontier: datetime | None
    outcome: SourceOutcome
    gap: bool = False

    def joins(self, manifest: Manifest) -> bool:
        """Whether *manifest*'s window starts where the loaded ones end (then its load advances the watermark)."""
        return not self.gap and contiguous(manifest.watermark_from, self.frontier)

    def settle(self, manifest: Manifest, status: RunStatus) -> None:
        """Count a finished load: a window that did not load completely stops the watermark for the rest."""
        self.outcome.worse(status)
        if status is RunStatus.LOADED and manifest.watermark_to:
            self.frontier = to_utc_naive(manifest.watermark_to)
        else:
            self.gap = True


# -- the run's state and its two side paths: a batch that is not staged, a scope that failed ----------


@dataclass
class _Run:
    """What every step of one run shares."""

    settings: Settings
    options: RunOptions
    progress: Progress
    summary: RunSummary
    report: Callable[[str], None]
    started_at: datetime
    scrubber: Scrubber
    classifier: Classifier
    outbox: Outbox
    quarantine: Quarantine
    workers: StagingWorkers | None = None
    loading: LoadThread | None = None

    @classmethod
    def start(cls, settings: Settings, options: RunOptions, progress: Progress,
              on_error: Callable[[str], None] | None) -> _Run:
        scrubber = scrubber_for(settings)
        summary = RunSummary(run_id=new_run_id(), dry_run=options.dry_run)
        report = error_reporter(summary, scrubber, on_error)
        return cls(settings, options, progress, summary, report, utc_now(), scrubber, classifier_for(settings),
                   open_outbox(settings, scrubber), open_quarantine(settings, scrubber, report))

    @property
    def loads(self) -> bool:
        """Whether staged batches load in this run (not a dry run, loads not held)."""
        return not self.options.dry_run and not self.settings.staging.hold_loads

    @property
    def batch_status(self) -> BatchStatus:
        """What a batch staged by this run is committed as."""
        if self.options.dry_run:
            return BatchStatus.DRY_RUN
        return BatchStatus.PENDING if self.loads else BatchStatus.HELD


def _stage(run: _Run, loader: BatchLoader, batch: Batch, outcome: SourceOutcome) -> Manifest | None:
    """Stage one batch and count it; None when its id is dead or was already tried in this run."""
    batch_id = batch_id_of(batch)
    outcome.batches += 1
    if run.outbox.is_dead(batch_id):
        run.summary.dead_batches.append(batch_id)
        outcome.worse(RunStatus.DEAD)
        run.report(f"batch {batch_id} ({batch.scope.label}) is dead: {run.outbox.get(batch_id).last_error}; not "
                   f"loaded, its window is kept (`ci-telemetry outbox retry {batch_id}` or `outbox drop`)")
        return None
    if batch_id in loader.attempted:
        return None
    manifest = stage_batch(batch, run.outbox, run.quarantine, run.scrubber, run.classifier,
                           status=run.batch_status, run_id=run.summary.run_id, started_at=run.started_at,
                           workers=run.workers)
    for line in manifest.incomplete:
        run.report(line)
    run.summary.add_staged(manifest, outcome)
    if manifest.status != BatchStatus.PENDING:
        outcome.worse(RunStatus.DRY_RUN if run.options.dry_run else RunStatus.HELD)
    return manifest


def _failed(run: _Run, loader: BatchLoader, scope: Scope, line: str) -> None:
    """A scope or source that could not be read: one line, one outcome, one EtlRuns row."""
    line = mask(line if line.startswith(scope.source) else f"{scope.source}: {line}")
    outcome = run.summary.outcome_of(scope)
    outcome.status, outcome.error = RunStatus.FAILED, line
    run.report(line)
    if run.options.dry_run:
        return
    try:
        loader.record_scope(scope, RunStatus.FAILED, errors=[line])
    except Exception:  # the store may be unreachable too, whatever it raises; the line is printed either way
        log.debug("cannot record the failure of %s", scope.label, exc_info=True)
