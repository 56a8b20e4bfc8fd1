"""One ETL run: for every source, extract → stage (outbox) → normalize → load → commit the watermark.

Batches are bounded (one page of builds each), so memory does not grow with history and a crash
loses at most the batch in flight: its staged files stay `pending` and the next run loads them
before extracting anything. A source that fails (authentication, a load error, an exhausted retry
budget) stops alone with one error line; the other sources still run, and the run exits non-zero.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from etl.classify import classifier_for
from etl.config import AzureDevOpsSource, InboxSource, Settings, SimulatorSource
from etl.load import load_batch
from etl.normalize import NormalizeContext, normalize_bundle, raw_for_staging, scrub_raw
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document
from etl.privacy import apply_policy, scrub_payload, scrubber_for
from etl.secret_refs import mask
from etl.sources.azure_devops.client import AdoClient, AuthError, RetryPolicy, SourceError, client_for_source
from etl.sources.azure_devops.extract import AzureDevOpsExtractor, BuildPage
from etl.sources.inbox import read_inbox
from etl.stage.outbox import TABLE_ORDER, Manifest, Outbox, batch_id_for
from etl.stage.quarantine import Quarantine
from etl.state import read_watermarks
from etl.timeutil import to_utc_naive
from etl.warehouse import open_warehouse
from etl.warehouse.base import Warehouse, WarehouseError

Progress = Callable[[str, int], None]


def _noop(_: str, __: int) -> None:
    return None


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
    status: str = "ok"  # ok | no new data | incomplete | failed | held | dry-run
    error: str | None = None


@dataclass
class RunSummary:
    """What a run did: rows staged and loaded per table, quarantined payloads, errors, duration."""

    run_id: str
    started: float = field(default_factory=time.monotonic)
    duration_seconds: float = 0.0
    staged: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TABLE_ORDER})
    loaded: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TABLE_ORDER})
    quarantined: int = 0
    errors: list[str] = field(default_factory=list)
    outcomes: list[SourceOutcome] = field(default_factory=list)
    resumed_batches: list[str] = field(default_factory=list)
    dry_run: bool = False
    #: Known-issue ledger rows written (rule × build attempt evaluated) after the loads.
    known_issue_rows: int = 0

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)

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
        lines += ["", f"Quarantined payloads: {self.quarantined}. Errors: {len(self.errors)}. "
                      f"Known-issue evaluations: {self.known_issue_rows}. Duration: {self.duration_seconds:.1f} s."]
        if self.resumed_batches:
            lines.append(f"Resumed pending batches: {', '.join(self.resumed_batches)}.")
        for err in self.errors:
            lines.append(f"- error: {err}")
        return "\n".join(lines) + "\n"


def _iso(value: datetime) -> str:
    return value.isoformat()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class EtlRun:
    """State of one run across its sources."""

    def __init__(self, settings: Settings, options: RunOptions, progress: Progress = _noop,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.options = options
        self.progress = progress
        self.on_error = on_error or (lambda line: None)
        self.scrubber = scrubber_for(settings)
        self.classifier = classifier_for(settings)
        self.staging = settings.path(settings.staging.dir)
        self.outbox = Outbox(self.staging, rows_policy=functools.partial(apply_policy, self.scrubber))
        self.quarantine = Quarantine(self.staging, scrub=functools.partial(scrub_payload, self.scrubber),
                                     report=self._error_line)
        self.summary = RunSummary(run_id=_now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
                                  dry_run=options.dry_run)
        self.started_at = _now()
        self.hold = settings.staging.hold_loads
        self.warehouse: Warehouse | None = None
        self.watermarks: dict[tuple[str, str, str], datetime] = {}
        #: The oldest window start loaded by this run: known issues are evaluated from there on.
        self.loaded_since: datetime | None = None

    def _error_line(self, line: str) -> None:
        line = mask(self.scrubber.redact(line) or "")  # error lines quote URLs and values from payloads
        self.summary.errors.append(line)
        self.on_error(line)

    # -- loading ---------------------------------------------------------------------------------

    def _load(self, manifest: Manifest) -> None:
        assert self.warehouse is not None
        counts = load_batch(self.warehouse, self.outbox, manifest, progress=lambda n: self.progress("rows", n))
        self.summary.add_loaded(counts)
        if manifest.watermark_from:
            since = to_utc_naive(manifest.watermark_from)
            self.loaded_since = since if self.loaded_since is None else min(self.loaded_since, since)

    def match_known_issues(self) -> None:
        """Evaluate the known-issue rules over the build attempts this run loaded (the ledger makes it idempotent)."""
        from etl.classify.known_issues import evaluate_known_issues, known_issues_for

        if self.loaded_since is None or self.warehouse is None:
            return
        try:
            outcome = evaluate_known_issues(self.warehouse, known_issues_for(self.settings), self.loaded_since)
        except (WarehouseError, ValueError) as exc:
            # The facts are loaded and the watermark committed; a broken rule file must not undo that.
            self._error_line(f"known issues: {exc}")
            return
        self.summary.known_issue_rows = outcome.rows

    def resume_pending(self) -> None:
        """Load batches a previous run staged but did not finish loading (a crash, a failed ingest)."""
        for manifest in self.outbox.batches("pending"):
            self._load(manifest)
            self.summary.resumed_batches.append(manifest.batch_id)

    # -- staging ---------------------------------------------------------------------------------

    def _stage(self, source: str, organization: str, project: str, wm_from: datetime, wm_to: datetime,
               builds: int, fill: Callable[[Any, NormalizeContext], None],
               after_fill: Callable[[Manifest], None] | None = None) -> Manifest:
        from_iso, to_iso = _iso(wm_from), _iso(wm_to)
        batch_id = batch_id_for(source, organization, project, from_iso, to_iso)
        # Re-staging a window keeps its first staging time, so its rows (IngestedAt) are byte-identical.
        staged_at = self.outbox.existing_staged_at(batch_id) or _iso(_now())
        manifest = Manifest(batch_id, source, organization, project, from_iso, to_iso, staged_at,
                            builds=builds, run_id=self.summary.run_id, started_at=_iso(self.started_at))
        staged = self.outbox.start(manifest)
        ctx = NormalizeContext(source, organization, datetime.fromisoformat(staged_at), self.scrubber,
                               self.classifier, self.quarantine)
        before = self.quarantine.count
        try:
            fill(staged, ctx)
        except BaseException:
            staged.abort()
            raise
        manifest.quarantined = self.quarantine.count - before
        manifest.errors = self.quarantine.lines[before:]
        if after_fill is not None:
            after_fill(manifest)
        status = "dry-run" if self.options.dry_run else "held" if self.hold else "pending"
        staged.commit(status)
        for table, n in staged.counts.items():
            self.summary.staged[table] = self.summary.staged.get(table, 0) + n
        return manifest

    def _finish_batch(self, manifest: Manifest, outcome: SourceOutcome) -> None:
        outcome.batches += 1
        outcome.builds += manifest.builds
        outcome.quarantined += manifest.quarantined
        if manifest.audit:
            outcome.status = "incomplete"
        if manifest.status == "pending":
            self._load(manifest)
        elif outcome.status == "ok":
            outcome.status = manifest.status

    def _no_new_data(self, source: str, organization: str, project: str, since: datetime) -> None:
        """An EtlRuns row saying the source was read and had nothing new (freshness monitors read this)."""
        if self.options.dry_run or self.warehouse is None:
            return
        now = _iso(_now())
        self.warehouse.ingest("EtlRuns", [{
            "RunId": f"{self.summary.run_id}-{source}", "Source": source, "Organization": organization,
            "Project": project, "StartedAt": _iso(self.started_at), "FinishedAt": now, "WatermarkFrom": _iso(since),
            "WatermarkTo": _iso(since), "Builds": 0, "RowCounts": "{}", "Quarantined": 0, "Errors": "[]",
            "Status": "no new data", "IngestedAt": now}], f"{self.summary.run_id}-{source}-{project}")

    def _failed_run_row(self, source: str, organization: str, project: str, error: str) -> None:
        if self.options.dry_run or self.warehouse is None:
            return
        now = _iso(_now())
        with contextlib.suppress(WarehouseError):
            self.warehouse.ingest("EtlRuns", [{
                "RunId": f"{self.summary.run_id}-{source}", "Source": source, "Organization": organization,
                "Project": project, "StartedAt": _iso(self.started_at), "FinishedAt": now, "Builds": 0,
                "RowCounts": "{}", "Quarantined": 0, "Errors": [error], "Status": "failed", "IngestedAt": now}],
                f"{self.summary.run_id}-{source}-{project}-failed")

    # -- sources ---------------------------------------------------------------------------------

    def _since(self, key: tuple[str, str, str], default: datetime) -> datetime:
        if self.options.since is not None:
            return self.options.since
        return self.watermarks.get(key) or default

    def _readable_builds(self, source: str, project: str, page: list[Any]) -> list[dict[str, Any]]:
        """The listed builds with a numeric id and a readable finish time; the others are quarantined."""
        out = []
        for item in page:
            ident = item.get("id") if isinstance(item, dict) else None
            try:
                int(ident)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self.quarantine(source, f"{project} build list item", "id", f"missing or not a number {ident!r}", item)
                continue
            try:
                to_utc_naive(item.get("finishTime"))
            except (TypeError, ValueError):
                self.quarantine(source, f"build {ident}", "finishTime",
                                f"invalid datetime {item.get('finishTime')!r}", item)
                continue
            out.append(item)
        return out

    def run_ado(self, name: str, client: AdoClient, projects: list[str], extractor: AzureDevOpsExtractor,
                default_since: datetime) -> None:
        """Every project of one organization, batch by batch (one page of builds per batch)."""
        organization = client.organization
        opt_out = set(self.settings.privacy.opt_out.projects)
        for project in projects:
            if project in opt_out:
                continue  # opted out: not one request is made for it
            outcome = SourceOutcome(name, project)
            self.summary.outcomes.append(outcome)
            since = self._since((name, organization, project), default_since)
            wm_from = since
            # The finish time of the first build whose audit failed: no watermark of this project
            # moves past it in this run, so the next run extracts that build again.
            hold: list[datetime] = []
            try:
                for listed in extractor.list_builds(project, since):
                    if not listed and not listed.audit:
                        continue
                    page = self._readable_builds(name, project, listed)
                    finish = [to_utc_naive(b.get("finishTime")) for b in page]
                    wm_to = max([*(t for t in finish if t is not None), wm_from])
                    wanted = BuildPage([b for b in page if extractor.wanted(b)], listed.audit)
                    findings: list[str] = []

                    def fill(staged: Any, ctx: NormalizeContext, wanted: BuildPage = wanted, project: str = project,
                             findings: list[str] = findings, hold: list[datetime] = hold,
                             start: datetime = wm_from) -> None:
                        for bundle in extractor.iter_bundles(project, wanted):
                            if bundle.audit:
                                findings.extend(bundle.audit)
                                hold.append(to_utc_naive(bundle.build.get("finishTime")) or start)
                            staged.add_raw(raw_for_staging(self.scrubber, bundle))
                            for table, rows in normalize_bundle(ctx, bundle).items():
                                staged.add_rows(table, rows)
                        if wanted.audit and not wanted:  # a listing finding with no build to carry it
                            findings.extend(wanted.audit)
                            hold.append(start)

                    def after_fill(manifest: Manifest, findings: list[str] = findings,
                                   hold: list[datetime] = hold) -> None:
                        manifest.audit = [f"{name}: {line}" for line in findings]
                        if hold:
                            manifest.watermark_hold = _iso(min(hold))

                    manifest = self._stage(name, organization, project, wm_from, wm_to, len(wanted), fill, after_fill)
                    for line in manifest.audit:
                        self._error_line(line)
                    self._finish_batch(manifest, outcome)
                    wm_from = wm_to
            except (SourceError, WarehouseError) as exc:
                # A failing source stops here (its watermark stays at the last loaded batch); others go on.
                outcome.status, outcome.error = "failed", str(exc)
                self._error_line(str(exc))
                self._failed_run_row(name, organization, project, str(exc))
                if isinstance(exc, AuthError):
                    return  # the same credentials will fail for every other project too
                continue
            if outcome.batches == 0:
                outcome.status = "no new data"
                self._no_new_data(name, organization, project, since)

    def run_inbox(self, cfg: InboxSource) -> None:
        """The inbox directory as one batch of the documents modified since the watermark."""
        outcome = SourceOutcome(cfg.name, "")
        self.summary.outcomes.append(outcome)
        since = self._since((cfg.name, "", ""), datetime(1970, 1, 1))
        docs = list(read_inbox(self.settings.path(cfg.path), since, cfg.max_document_bytes,
                               self.settings.limits))
        if not docs:
            outcome.status = "no new data"
            self._no_new_data(cfg.name, "", "", since)
            return
        wm_to = max(d.modified for d in docs)

        def fill(staged: Any, ctx: NormalizeContext) -> None:
            for doc in docs:
                obj = f"inbox file {doc.path.name}"
                if doc.error:
                    ctx.quarantine(cfg.name, obj, doc.field, doc.error, doc.body)
                    continue
                body = doc.body
                staged.add_raw(scrub_raw(self.scrubber, {"file": doc.path.name, "body": body}))
                try:
                    row, stages, samples = normalize_metrics_document(
                        ctx, str(body["key"]), doc.file_name, body, None,
                        project=body.get("project"), organization=body.get("organization"), obj=obj,
                        observed_at=doc.modified)
                except MetricsDocumentError as exc:
                    ctx.quarantine(cfg.name, obj, exc.field, exc.reason, body)
                    continue
                staged.add_rows("BuildMetrics", [row])
                staged.add_rows("BuildStages", stages)
                staged.add_rows("MetricSamples", samples)

        try:
            manifest = self._stage(cfg.name, "", "", since, wm_to, 0, fill)
            self._finish_batch(manifest, outcome)
        except WarehouseError as exc:
            outcome.status, outcome.error = "failed", str(exc)
            self._error_line(str(exc))

    def client_for(self, cfg: AzureDevOpsSource) -> AdoClient:
        return client_for_source(cfg)

    def extractor_for(self, cfg: AzureDevOpsSource | SimulatorSource, client: AdoClient) -> AzureDevOpsExtractor:
        definitions = cfg.definitions if isinstance(cfg, AzureDevOpsSource) else []
        branches = cfg.branches if isinstance(cfg, AzureDevOpsSource) else []
        return AzureDevOpsExtractor(
            client, definitions=definitions, branches=branches,
            opt_out_definitions=self.settings.privacy.opt_out.definitions, page_size=cfg.page_size,
            test_results=cfg.test_results, metrics_artifacts=cfg.metrics_artifacts,
            max_parallel_requests=cfg.max_parallel_requests, progress=self.progress,
            limits=self.settings.limits)

    def run_source(self, cfg: Any) -> None:
        if isinstance(cfg, InboxSource):
            self.run_inbox(cfg)
            return
        if isinstance(cfg, SimulatorSource):
            with simulated_organization(cfg) as server:
                client = AdoClient(cfg.name, server.url, auth="none", max_parallel_requests=cfg.max_parallel_requests,
                                   policy=RetryPolicy(max_retries=8, backoff_seconds=0.05, max_backoff_seconds=1.0,
                                                      max_total_wait_seconds=30.0))
                default = _now() - timedelta(days=cfg.days + 2)
                try:
                    self.run_ado(cfg.name, client, list(server.projects), self.extractor_for(cfg, client), default)
                finally:
                    client.close()
            return
        try:
            client = self.client_for(cfg)
        except (AuthError, Exception) as exc:  # a secret that cannot be resolved stops this source only
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            line = line if line.startswith(cfg.name) else f"{cfg.name}: {line}"
            self.summary.outcomes.append(SourceOutcome(cfg.name, ",".join(cfg.projects), status="failed", error=line))
            self._error_line(line)
            return
        try:
            default = _now() - timedelta(days=cfg.initial_lookback_days)
            self.run_ado(cfg.name, client, list(cfg.projects), self.extractor_for(cfg, client), default)
        finally:
            client.close()

    def execute(self) -> RunSummary:
        """Resume pending batches, then run every source; always returns a summary."""
        self.warehouse = open_warehouse(self.settings)
        try:
            if self.settings.warehouse.kind == "local":
                self.warehouse.apply_schema()  # idempotent; lets `etl` run on a fresh store
            if not self.options.dry_run and not self.hold:
                try:
                    self.resume_pending()
                except WarehouseError as exc:
                    # The store refuses the oldest pending batch: nothing newer may load before it.
                    self._error_line(f"resuming pending batches: {exc}")
                    self.summary.outcomes.append(SourceOutcome("(outbox)", "", status="failed", error=str(exc)))
                    return self.summary
            self.watermarks = read_watermarks(self.warehouse)
            for cfg in self.settings.sources:
                self.run_source(cfg)
            self.match_known_issues()
            if not self.options.dry_run:
                self.outbox.prune(self.settings.staging.keep_loaded_batches)
        finally:
            self.summary.quarantined = self.quarantine.count
            self.summary.duration_seconds = time.monotonic() - self.summary.started
            self.warehouse.close()
        return self.summary


@contextlib.contextmanager
def simulated_organization(cfg: SimulatorSource) -> Iterator[Any]:
    """The simulator served on loopback for the duration of the run."""
    from etl.simulator import start_server

    server = start_server(seed=cfg.seed, days=cfg.days, builds_per_day=cfg.builds_per_day)
    try:
        yield server
    finally:
        server.stop()


def run_etl(settings: Settings, options: RunOptions | None = None, progress: Progress = _noop,
            on_error: Callable[[str], None] | None = None) -> RunSummary:
    """Run the ETL once for every configured source; see the module docstring."""
    return EtlRun(settings, options or RunOptions(), progress, on_error).execute()


def release_held(settings: Settings, batch_id: str | None = None,
                 progress: Progress = _noop) -> list[tuple[str, dict[str, int]]]:
    """Mark held batches pending and load them (all, or one by id); returns (batch id, rows loaded)."""
    outbox = Outbox(settings.path(settings.staging.dir))
    held = outbox.batches("held")
    if batch_id is not None:
        held = [m for m in held if m.batch_id == batch_id]
        if not held:
            raise KeyError(f"no held batch {batch_id!r} (see `ci-telemetry outbox list`)")
    warehouse = open_warehouse(settings)
    out = []
    try:
        if settings.warehouse.kind == "local":
            warehouse.apply_schema()
        for manifest in held:
            outbox.set_status(manifest, "pending")
            counts = load_batch(warehouse, outbox, manifest, progress=lambda n: progress("rows", n))
            out.append((manifest.batch_id, counts))
    finally:
        warehouse.close()
    return out
