"""One ETL run: for each source, for each batch — stage, load, commit the watermark, derive.

    resume the pending batches a previous run left (a crash, a failed load)
    for each configured source (the registry maps its `kind` to a reader):
        for each scope (source / organization / project) and each of its batches:
            stage     extract and normalize every item into the outbox; a bad item is quarantined alone
            load      ingest the fact tables (upserts by key)
            commit    ledgers, the watermark (only past a complete, gap-free window), the EtlRuns row
            derive    known-issue matching over the batch's builds, then the batch is marked loaded

Isolation: an item that cannot be read, normalized or staged is quarantined and the batch goes
on; a load that fails leaves the batch pending (retried once per later run) and after
`staging.max_load_attempts` moves it to `outbox/dead/`; a scope or source that cannot be read
stops alone with one line and an EtlRuns row. The watermark never moves past a window that did not
load completely, so the next run reads it again. The run exits non-zero when anything failed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from etl.classify import classifier_for
from etl.config import Settings
from etl.load import RunStatus, batch_row, commit_batch, etl_runs_row, load_facts, mark_done, record
from etl.normalize.batch import normalize_batch
from etl.normalize.context import NormalizeContext
from etl.privacy import apply_policy, scrub_payload, scrubber_for
from etl.secret_refs import mask
from etl.sources import SourceEnv, open_source
from etl.sources.base import Batch, Scope, ScopeFailed, SourceFailed, Start
from etl.sources.inbox import LEDGER_TABLE
from etl.stage.outbox import TABLE_ORDER, BatchStatus, Manifest, Outbox, batch_id_for
from etl.stage.quarantine import Quarantine
from etl.state import contiguous, read_files_seen, read_watermarks
from etl.timeutil import to_utc_naive, utc_now
from etl.warehouse import open_warehouse
from etl.warehouse.base import Warehouse

log = logging.getLogger(__name__)
Progress = Callable[[str, int], None]
_FAILED = (RunStatus.FAILED, RunStatus.RETRYING, RunStatus.DEAD)


def _noop(_: str, __: int) -> None:
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


@dataclass
class RunOptions:
    """What the command line can change for one run."""

    since: datetime | None = None
    dry_run: bool = False


@dataclass
class SourceOutcome:
    """How one (source, project) fared."""

    source: str
    project: str
    batches: int = 0
    builds: int = 0
    quarantined: int = 0
    status: RunStatus = RunStatus.LOADED
    error: str | None = None

    def worse(self, status: RunStatus) -> None:
        """Keep the most serious status seen (failed > dead > retrying > incomplete > held/dry-run > loaded)."""
        order = [RunStatus.LOADED, RunStatus.NO_NEW_DATA, RunStatus.DRY_RUN, RunStatus.HELD, RunStatus.INCOMPLETE,
                 RunStatus.RETRYING, RunStatus.DEAD, RunStatus.FAILED]
        if order.index(status) > order.index(self.status):
            self.status = status


@dataclass
class RunSummary:
    """What a run did: rows staged and loaded per table, quarantined payloads, load failures, errors, duration."""

    run_id: str
    started: float = field(default_factory=time.monotonic)
    duration_seconds: float = 0.0
    staged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLE_ORDER, 0))
    loaded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLE_ORDER, 0))
    quarantined: int = 0
    errors: list[str] = field(default_factory=list)
    outcomes: list[SourceOutcome] = field(default_factory=list)
    resumed_batches: list[str] = field(default_factory=list)
    #: Batches whose load failed this run (they stay pending), and those that went (or stayed) dead.
    load_failures: list[str] = field(default_factory=list)
    dead_batches: list[str] = field(default_factory=list)
    incomplete_batches: list[str] = field(default_factory=list)
    dry_run: bool = False
    #: Known-issue ledger rows written (rule × build attempt evaluated) for the batches loaded.
    known_issue_rows: int = 0

    @property
    def failed(self) -> bool:
        return any(o.status in _FAILED for o in self.outcomes) or bool(self.load_failures or self.dead_batches)

    def add_loaded(self, counts: dict[str, int]) -> None:
        for table, n in counts.items():
            self.loaded[table] = self.loaded.get(table, 0) + n

    def markdown(self) -> str:
        """The summary as Markdown (what the pipelines publish)."""
        lines = [f"## ETL run {self.run_id}" + (" (dry run)" if self.dry_run else ""), "",
                 "| Table | Rows staged | Rows loaded |", "|---|---:|---:|"]
        for table in TABLE_ORDER:
            lines.append(f"| {table} | {self.staged.get(table, 0)} | {self.loaded.get(table, 0)} |")
        lines += ["", "| Source | Project | Batches | Builds | Quarantined | Status |", "|---|---|---:|---:|---:|---|"]
        for o in self.outcomes:
            lines.append(f"| {o.source} | {o.project} | {o.batches} | {o.builds} | {o.quarantined} | {o.status} |")
        lines += ["", self.counts_line() + f" Duration: {self.duration_seconds:.1f} s."]
        if self.resumed_batches:
            lines.append(f"Resumed pending batches: {', '.join(self.resumed_batches)}.")
        for err in self.errors:
            lines.append(f"- error: {err}")
        return "\n".join(lines) + "\n"

    def counts_line(self) -> str:
        return (f"Quarantined payloads: {self.quarantined}. Failed loads: {len(self.load_failures)}. "
                f"Dead batches: {len(self.dead_batches)}. Incomplete batches: {len(self.incomplete_batches)}. "
                f"Errors: {len(self.errors)}. Known-issue evaluations: {self.known_issue_rows}.")


class EtlRun:
    """One run's state: the store, the outbox, the quarantine, and what happened so far."""

    def __init__(self, settings: Settings, options: RunOptions, progress: Progress = _noop,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.options = options
        self.progress = progress
        self.on_error = on_error or (lambda line: None)
        self.scrubber = scrubber_for(settings)
        self.classifier = classifier_for(settings)
        self.outbox = Outbox(settings.path(settings.staging.dir),
                             rows_policy=functools.partial(apply_policy, self.scrubber))
        self.quarantine = Quarantine(settings.path(settings.staging.dir),
                                     scrub=functools.partial(scrub_payload, self.scrubber), report=self.error_line)
        self.summary = RunSummary(run_id=utc_now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
                                  dry_run=options.dry_run)
        self.started_at = utc_now()
        self.loads = not options.dry_run and not settings.staging.hold_loads
        self.warehouse: Warehouse | None = None
        #: Batch ids loaded or attempted in this run: each is tried at most once per run.
        self.attempted: set[str] = set()
        self._known_issues: list[Any] | None = None

    # -- the loop --------------------------------------------------------------------------------

    def execute(self) -> RunSummary:
        """Resume pending batches, then run every source; always returns a summary."""
        with self._store():
            if self.loads:
                self.resume_pending()
            for cfg in self.settings.sources:
                self.run_source(cfg)
            if not self.options.dry_run:
                self.outbox.prune(self.settings.staging.keep_loaded_batches)
        return self.summary

    def run_source(self, cfg: Any) -> None:
        """Every scope of one source; a failing source stops alone with one line and an EtlRuns row."""
        scope = Scope(cfg.name)
        try:
            with open_source(cfg, SourceEnv(self.settings, self.progress)) as source:
                for scope in source.scopes():
                    try:
                        self.run_scope(source, scope)
                    except ScopeFailed as exc:
                        self.failed(scope, str(exc))
        except SourceFailed as exc:
            self.failed(scope, str(exc))
        except Exception as exc:  # a bug or an unforeseen error in one source must not stop the others
            log.debug("source %s failed", cfg.name, exc_info=True)
            self.failed(scope, f"{cfg.name}: unexpected {_one_line(exc)}")

    def run_scope(self, source: Any, scope: Scope) -> None:
        outcome = SourceOutcome(scope.source, scope.project)
        self.summary.outcomes.append(outcome)
        start = self.start_for(scope)
        frontier, gap = start.watermark, False
        for batch in source.batches(scope, start):
            manifest = self.stage(batch, outcome)
            if manifest is None:  # dead, or its load already failed in this run: later windows must not jump it
                gap = True
                continue
            if manifest.status != BatchStatus.PENDING:
                continue  # held or dry run
            status = self.load(manifest, advance=not gap and contiguous(manifest.watermark_from, frontier))
            outcome.worse(status)
            if status is RunStatus.LOADED and manifest.watermark_to:
                frontier = to_utc_naive(manifest.watermark_to)
            else:
                gap = True
        if outcome.batches == 0:
            outcome.status = RunStatus.NO_NEW_DATA
            self.record_row(scope, RunStatus.NO_NEW_DATA, since=start.watermark)

    # -- the steps -------------------------------------------------------------------------------

    def stage(self, batch: Batch, outcome: SourceOutcome) -> Manifest | None:
        """Extract, normalize and stage one batch; None when its id is dead or was already tried this run."""
        scope, window = batch.scope, batch.window
        wm_from = window.start.isoformat() if window else None
        wm_to = window.end.isoformat() if window else None
        batch_id = batch_id_for(scope.source, scope.organization, scope.project, wm_from or batch.key, wm_to or "")
        outcome.batches += 1
        if self.outbox.is_dead(batch_id):
            dead = self.outbox.get(batch_id)
            self.summary.dead_batches.append(batch_id)
            outcome.worse(RunStatus.DEAD)
            self.error_line(f"batch {batch_id} ({scope.label}) is dead: {dead.last_error}; not loaded, its window "
                            f"is kept (`ci-telemetry outbox retry {batch_id}` or `outbox drop`)")
            return None
        if batch_id in self.attempted:
            return None
        previous = self.outbox.existing(batch_id)
        # Re-staging a window keeps its first staging time (its rows stay byte-identical) and its attempts.
        manifest = Manifest(batch_id, scope.source, scope.organization, scope.project, wm_from, wm_to,
                            previous.staged_at if previous else utc_now().isoformat(), builds=batch.builds,
                            run_id=self.summary.run_id, started_at=self.started_at.isoformat())
        if previous is not None and previous.status == BatchStatus.PENDING:
            manifest.attempts, manifest.last_error = previous.attempts, previous.last_error
        staged = self.outbox.start(manifest)
        ctx = NormalizeContext(scope.source, scope.organization, datetime.fromisoformat(manifest.staged_at),
                               self.scrubber, self.classifier, self.quarantine)
        before = self.quarantine.count
        try:
            for item, normalized in normalize_batch(ctx, batch):
                try:
                    staged.add_item(normalized.raw, normalized.tables)
                except Exception as exc:  # a value that cannot be serialized: this item only
                    ctx.quarantine(scope.source, item.obj, "(payload)", f"staging failed: {_one_line(exc)}", None)
                    continue
                if any(normalized.tables.values()):  # a file whose rows loaded is not read again; a rejected one is
                    staged.add_rows(LEDGER_TABLE, item.ledger)
        except BaseException:
            staged.abort()
            raise
        manifest.quarantined = self.quarantine.count - before
        manifest.errors = self.quarantine.lines[before:]
        # Count-audit findings: the batch loads, is marked incomplete, and its window is read again.
        manifest.incomplete = [mask(f"{scope.source}: {line}") for line in batch.incomplete]
        for line in manifest.incomplete:
            self.error_line(line)
        status = BatchStatus.DRY_RUN if self.options.dry_run else BatchStatus.PENDING if self.loads \
            else BatchStatus.HELD
        staged.commit(status)
        for table, n in staged.counts.items():
            self.summary.staged[table] = self.summary.staged.get(table, 0) + n
        outcome.builds += manifest.builds
        outcome.quarantined += manifest.quarantined
        if status is not BatchStatus.PENDING:
            outcome.worse(RunStatus.DRY_RUN if self.options.dry_run else RunStatus.HELD)
        return manifest

    def load(self, manifest: Manifest, advance: bool) -> RunStatus:
        """Load, commit, derive, mark loaded; any failure leaves the batch pending (or dead after N attempts)."""
        assert self.warehouse is not None
        self.attempted.add(manifest.batch_id)
        try:
            counts = load_facts(self.warehouse, self.outbox, manifest, progress=lambda n: self.progress("rows", n))
            status = commit_batch(self.warehouse, self.outbox, manifest, advance=advance)
            self.derive(manifest)
            mark_done(self.outbox, manifest, status)
        except Exception as exc:  # any load failure is this batch's alone; the next batches go on
            return self.load_failed(manifest, _one_line(exc))
        self.summary.add_loaded(counts)
        if status is RunStatus.INCOMPLETE:
            self.summary.incomplete_batches.append(manifest.batch_id)
        return status

    def derive(self, manifest: Manifest) -> None:
        """Known-issue matching over the builds this batch loaded (idempotent: the ledger skips what is done)."""
        from etl.classify.known_issues import evaluate_known_issues

        assert self.warehouse is not None
        builds, since = set(), None
        for chunk in self.outbox.rows(manifest.batch_id, "TimelineBuilds"):
            for row in chunk:
                builds.add((row["Organization"], row["Project"], int(row["BuildId"])))
                queued = to_utc_naive(row.get("QueueTime"))
                if queued is not None:
                    since = queued if since is None else min(since, queued)
        rules = self.known_issues()
        if not builds or since is None or not rules:
            return
        outcome = evaluate_known_issues(self.warehouse, rules, since, builds=builds,
                                        tag=f"known-issues-{manifest.batch_id}")
        self.summary.known_issue_rows += outcome.rows

    def known_issues(self) -> list[Any]:
        """The known-issue rules, read once per run; an unreadable rule file is one error line, not a failed load."""
        if self._known_issues is None:
            from etl.classify.known_issues import known_issues_for

            try:
                self._known_issues = known_issues_for(self.settings)
            except ValueError as exc:
                self._known_issues = []
                self.error_line(f"known issues: {exc}; fix the file, then `ci-telemetry classify --rebuild`")
        return self._known_issues

    def load_failed(self, manifest: Manifest, reason: str) -> RunStatus:
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
        self.error_line(f"batch {manifest.batch_id} ({manifest.where}): load attempt {manifest.attempts} of {limit} "
                        f"failed: {reason}" + ("; moved to outbox/dead" if dead else "; retried by the next run"))
        try:  # the store may be what failed; the manifest already holds the attempt
            record(self.warehouse, batch_row(manifest, status, utc_now(), [manifest.last_error]))  # type: ignore[arg-type]
        except Exception: # best effort: the outbox is the record of truth here
            log.debug("cannot record the failed load of %s", manifest.batch_id, exc_info=True)
        return status

    def resume_pending(self) -> None:
        """Load batches a previous run staged but did not finish (a crash, a failed load), oldest first."""
        for manifest in self.outbox.batches(BatchStatus.PENDING):
            self.load(manifest, advance=contiguous(manifest.watermark_from, self._watermark(manifest)))
            self.summary.resumed_batches.append(manifest.batch_id)

    def release(self, batch_id: str | None) -> list[tuple[str, RunStatus, int]]:
        """Load held batches (all, or one), oldest first, exactly as the run loop loads a batch; (id, status, rows)."""
        held = self.outbox.batches(BatchStatus.HELD)
        if batch_id is not None:
            held = [m for m in held if m.batch_id == batch_id]
            if not held:
                raise KeyError(f"no held batch {batch_id!r} (see `ci-telemetry outbox list`)")
        out = []
        with self._store():
            for manifest in held:
                self.outbox.set_status(manifest, BatchStatus.PENDING)
                before = sum(self.summary.loaded.values())
                status = self.load(manifest, advance=contiguous(manifest.watermark_from, self._watermark(manifest)))
                out.append((manifest.batch_id, status, sum(self.summary.loaded.values()) - before))
        return out

    def retry(self, batch_id: str) -> RunStatus:
        """Load a dead batch now, its attempts reset (`outbox retry`)."""
        manifest = self.outbox.revive(batch_id)
        with self._store():
            return self.load(manifest, advance=contiguous(manifest.watermark_from, self._watermark(manifest)))

    def drop(self, batch_id: str, reason: str) -> Manifest:
        """Delete a dead batch with the operator's reason; its window is read again by the next run."""
        manifest = self.outbox.drop(batch_id, reason)
        with self._store():
            record(self.warehouse, batch_row(manifest, RunStatus.DROPPED, utc_now(),  # type: ignore[arg-type]
                                             [f"dropped by an operator: {reason}"]))
        return manifest

    # -- helpers ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _store(self) -> Iterator[Warehouse]:
        """The warehouse, open (schema applied on a local store) for the duration of a run or command."""
        self.warehouse = open_warehouse(self.settings)
        try:
            if self.warehouse.applies_schema_on_run:
                self.warehouse.apply_schema()  # idempotent; lets `etl` run on a fresh store
            yield self.warehouse
        finally:
            self.summary.quarantined = self.quarantine.count
            self.summary.duration_seconds = time.monotonic() - self.summary.started
            self.warehouse.close()

    def _watermark(self, manifest: Manifest) -> datetime | None:
        assert self.warehouse is not None
        return read_watermarks(self.warehouse).get((manifest.source, manifest.organization, manifest.project))

    def start_for(self, scope: Scope) -> Start:
        """The committed watermark (or --since) and, for ledger-keeping sources, the files already read."""
        assert self.warehouse is not None
        key = (scope.source, scope.organization, scope.project)
        mark = self.options.since or read_watermarks(self.warehouse).get(key)
        return Start(mark, read_files_seen(self.warehouse, scope.source))

    def error_line(self, line: str) -> None:
        line = mask(self.scrubber.redact(line) or "")  # error lines quote URLs and values from payloads
        self.summary.errors.append(line)
        self.on_error(line)

    def failed(self, scope: Scope, line: str) -> None:
        """A scope or source that could not be read: one line, one outcome, one EtlRuns row."""
        line = mask(line if line.startswith(scope.source) else f"{scope.source}: {line}")
        existing = [o for o in self.summary.outcomes if (o.source, o.project) == (scope.source, scope.project)]
        outcome = existing[-1] if existing else SourceOutcome(scope.source, scope.project)
        if not existing:
            self.summary.outcomes.append(outcome)
        outcome.status, outcome.error = RunStatus.FAILED, line
        self.error_line(line)
        try:
            self.record_row(scope, RunStatus.FAILED, errors=[line])
        except Exception: # the store may be unreachable too; the line is printed either way
            log.debug("cannot record the failure of %s", scope.label, exc_info=True)

    def record_row(self, scope: Scope, status: RunStatus, since: datetime | None = None,
                   errors: list[str] | None = None) -> None:
        """An EtlRuns row for a scope with no batch (nothing new, or failed); freshness monitors read these."""
        if self.options.dry_run or self.warehouse is None:
            return
        record(self.warehouse, etl_runs_row(
            run_id=f"{self.summary.run_id}-{scope.source}", source=scope.source, organization=scope.organization,
            project=scope.project, status=status, started_at=self.started_at, finished_at=utc_now(),
            watermark_from=since, watermark_to=since, errors=errors or []))


def run_etl(settings: Settings, options: RunOptions | None = None, progress: Progress = _noop,
            on_error: Callable[[str], None] | None = None) -> RunSummary:
    """Run the ETL once for every configured source; see the module docstring."""
    return EtlRun(settings, options or RunOptions(), progress, on_error).execute()


def release_held(settings: Settings, batch_id: str | None = None, progress: Progress = _noop,
                 on_error: Callable[[str], None] | None = None) -> list[tuple[str, RunStatus, int]]:
    """Load held batches (all, or one by id) with their watermarks and known issues; (batch id, status, rows)."""
    return EtlRun(settings, RunOptions(), progress, on_error).release(batch_id)
