"""What a run did, for the console and the pipelines: rows per table, outcomes per source, errors.

The summary only records; the run loop and the load step fill it in. `error_reporter` is the one
way a line reaches it: redacted and masked first, since error lines quote URLs and payload values.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from etl.load import RunStatus
from etl.privacy import Scrubber
from etl.secret_refs import mask
from etl.sources.base import Scope
from etl.stage.outbox import TABLE_ORDER, Manifest
from etl.timeutil import utc_now

Report = Callable[[str], None]
_FAILED = (RunStatus.FAILED, RunStatus.RETRYING, RunStatus.DEAD)
#: Least to most serious: an outcome keeps the worst status it saw.
_SEVERITY = [RunStatus.LOADED, RunStatus.NO_NEW_DATA, RunStatus.DRY_RUN, RunStatus.HELD, RunStatus.INCOMPLETE,
             RunStatus.RETRYING, RunStatus.DEAD, RunStatus.FAILED]


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
        if _SEVERITY.index(status) > _SEVERITY.index(self.status):
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

    def add_outcome(self, scope: Scope) -> SourceOutcome:
        """A new outcome for a scope the run starts reading."""
        outcome = SourceOutcome(scope.source, scope.project)
        self.outcomes.append(outcome)
        return outcome

    def outcome_of(self, scope: Scope) -> SourceOutcome:
        """The scope's latest outcome; a new one when it failed before its first batch (or before its scopes)."""
        existing = [o for o in self.outcomes if (o.source, o.project) == (scope.source, scope.project)]
        return existing[-1] if existing else self.add_outcome(scope)

    def add_staged(self, manifest: Manifest, outcome: SourceOutcome) -> None:
        """Count a staged batch: rows per table, and its builds and quarantined payloads for its scope."""
        for table, n in manifest.counts.items():
            self.staged[table] = self.staged.get(table, 0) + n
        outcome.builds += manifest.builds
        outcome.quarantined += manifest.quarantined

    def add_loaded(self, counts: dict[str, int]) -> None:
        for table, n in counts.items():
            self.loaded[table] = self.loaded.get(table, 0) + n

    def finish(self, quarantined: int) -> None:
        """The run's totals, once it ends (or stops)."""
        self.quarantined = quarantined
        self.duration_seconds = time.monotonic() - self.started

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


def new_run_id() -> str:
    """A run's id: its UTC start to the second, and a random suffix (two runs may start in one second)."""
    return utc_now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def error_reporter(summary: RunSummary, scrubber: Scrubber, on_error: Report | None = None) -> Report:
    """Where every error line of a run goes: redacted and masked, kept in the summary, passed to *on_error*."""

    def report(line: str) -> None:
        line = mask(scrubber.redact(line) or "")  # error lines quote URLs and values from payloads
        summary.errors.append(line)
        if on_error is not None:
            on_error(line)

    return report
