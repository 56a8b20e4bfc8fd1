"""Retention: raw rows expire, daily summaries keep the long-term trends.

Two periods (settings.retention): `builds_days` (default 730) for builds, metrics documents and
their stages, alerts, ETL runs, known-issue ledger, triage and watermarks; `details_days` (default
90) for timeline records and issues, test runs and results, and metric samples.

- On Azure Data Explorer the periods are the tables' retention policies: `schema apply` writes
  `softdelete = <N>d` from these settings (etl/warehouse/kusto.py), and the cluster deletes by
  ingestion time. `retention apply` only fills the summary there.
- On the local store `retention apply` deletes expired rows itself, by the row's event time (build
  finish, queue, sample or detection time; IngestedAt when that is null).

Before anything is deleted, `DailyBuildSummary` (one row per organization, project, definition and
UTC day of FinishTime) is (re)computed from the Latest views: builds by result, duration
average/median/max, test runs, results, failures and passes on rerun. A day is recomputed while its
detail rows are certainly complete (newer than the details cutoff plus a margin for builds that
were queued a day before they finished) or when it has no summary row yet; older days keep the
summary computed while their raw rows existed. Cutoffs fall on UTC midnight so a day is never
half-deleted. The ETL can call `summarize_daily` at the end of a run to keep today's row current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from etl.config import Settings
from etl.schema import load_tables
from etl.warehouse.base import Warehouse

SUMMARY_TABLE = "DailyBuildSummary"
#: A build queued this long before the day it finished on still has all its details summarized.
DETAILS_MARGIN = timedelta(days=2)

#: The event-time column a row expires by (IngestedAt when it is null or the table is not listed).
TIME_COLUMNS = {
    "TimelineBuilds": "FinishTime",
    "BuildMetrics": "EndTime",
    "EtlRuns": "StartedAt",
    "Alerts": "DetectedAt",
    "KnownIssueMatches": "FinishTime",
    "FailureTriage": "TriagedAt",
    "EtlWatermarks": "UpdatedAt",
    "TimelineRecords": "QueueTime",
    "TimelineIssues": "QueueTime",
    "TestRuns": "QueueTime",
    "TestResults": "QueueTime",
    "MetricSamples": "Timestamp",
    "PipelineSteps": "Day",
}

def floor_day(moment: datetime) -> datetime:
    """UTC midnight of *moment*, naive (the stores keep naive UTC)."""
    moment = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def period_days(table: str, settings: Settings) -> int | None:
    """Days *table* keeps its rows, or None when it is never trimmed (its `// retention:` class in kql/tables)."""
    return load_tables()[table].retention_days(settings.retention)


def cutoff(table: str, settings: Settings, now: datetime) -> datetime | None:
    """Rows of *table* whose event time is before this (naive UTC midnight) have expired."""
    days = period_days(table, settings)
    return None if days is None else floor_day(now) - timedelta(days=days)


# ---------------------------------------------------------------------------
# Daily summaries
# ---------------------------------------------------------------------------

_KEY = ["Organization", "Project", "Definition", "Day"]
_DAYS_QUERY = (
    "LatestTimelineBuilds | where isnotnull(FinishTime) "
    "| summarize Builds = count() by Organization, Project, Definition, Day = bin(FinishTime, 1d)"
)
_BUILDS_QUERY = (
    "declare query_parameters(since:datetime); "
    "LatestTimelineBuilds | where FinishTime >= since "
    "| project Organization, Project, BuildId, Definition, DefinitionId, Result, DurationSeconds, FinishTime"
)
_TESTS_QUERY = (
    "LatestTestResults | summarize TestResults = count(), TestsFailed = countif(Outcome =~ 'Failed'), "
    "TestsPassedOnRerun = countif(PassedOnRerun == true) by Organization, Project, BuildId"
)
_RUNS_QUERY = "LatestTestRuns | summarize TestRuns = count() by Organization, Project, BuildId"
_EXISTING_QUERY = "LatestDailyBuildSummary | project Organization, Project, Definition, Day"


@dataclass
class SummaryResult:
    """What `summarize_daily` computed (and wrote, unless it was a dry run)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    written: bool = False

    @property
    def days(self) -> int:
        return len({r["Day"] for r in self.rows})


def _naive(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values)
    return stamps.dt.tz_convert(UTC).dt.tz_localize(None) if stamps.dt.tz is not None else stamps


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    # A build without a definition name still counts; the key column cannot be null.
    frame["Definition"] = frame["Definition"].fillna("").astype(str)
    frame["Day"] = _naive(frame["Day"])
    return frame


def days_to_summarize(warehouse: Warehouse, settings: Settings, now: datetime) -> pd.DataFrame:
    """Keys (Organization, Project, Definition, Day) whose summary row must be (re)computed now."""
    days = warehouse.query(_DAYS_QUERY)
    if days.empty:
        return pd.DataFrame(columns=_KEY)
    days = _keys(days)[_KEY]
    existing = warehouse.query(_EXISTING_QUERY)
    existing = _keys(existing)[_KEY] if not existing.empty else pd.DataFrame(columns=_KEY)
    marker = days.merge(existing.assign(_have=True), on=_KEY, how="left")
    complete_from = floor_day(now) - timedelta(days=settings.retention.details_days) + DETAILS_MARGIN
    wanted = marker["_have"].isna() | (marker["Day"] >= pd.Timestamp(complete_from))
    return marker.loc[wanted, _KEY].reset_index(drop=True)


def compute_daily(warehouse: Warehouse, keys: pd.DataFrame, now: datetime) -> list[dict[str, Any]]:
    """Summary rows for *keys*, from LatestTimelineBuilds / LatestTestRuns / LatestTestResults."""
    if keys.empty:
        return []
    since = pd.Timestamp(keys["Day"].min()).to_pydatetime()
    builds = warehouse.query(_BUILDS_QUERY, {"since": since})
    if builds.empty:
        return []
    builds = builds.copy()
    builds["Definition"] = builds["Definition"].fillna("").astype(str)
    builds["Day"] = _naive(builds["FinishTime"]).dt.floor("D")
    builds["_result"] = builds["Result"].fillna("").astype(str).str.lower()
    per_build = ["Organization", "Project", "BuildId"]
    for extra in (warehouse.query(_TESTS_QUERY), warehouse.query(_RUNS_QUERY)):
        if not extra.empty:
            builds = builds.merge(extra, on=per_build, how="left")
    for column in ("TestRuns", "TestResults", "TestsFailed", "TestsPassedOnRerun"):
        if column not in builds:
            builds[column] = 0
        builds[column] = pd.to_numeric(builds[column], errors="coerce").fillna(0)
    builds = builds.merge(keys, on=_KEY, how="inner")
    stamp = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    rows = []
    for (org, project, definition, day), group in builds.groupby(_KEY, sort=True):
        durations = pd.to_numeric(group["DurationSeconds"], errors="coerce").dropna()
        ids = pd.to_numeric(group["DefinitionId"], errors="coerce").dropna()
        rows.append({
            "Organization": org,
            "Project": project,
            "Definition": definition,
            "Day": pd.Timestamp(day).to_pydatetime(),
            "DefinitionId": int(ids.max()) if not ids.empty else None,
            "Builds": len(group),
            "Succeeded": int((group["_result"] == "succeeded").sum()),
            "PartiallySucceeded": int((group["_result"] == "partiallysucceeded").sum()),
            "Failed": int((group["_result"] == "failed").sum()),
            "Canceled": int((group["_result"] == "canceled").sum()),
            "DurationAvgSeconds": float(durations.mean()) if not durations.empty else None,
            "DurationP50Seconds": float(durations.median()) if not durations.empty else None,
            "DurationMaxSeconds": float(durations.max()) if not durations.empty else None,
            "TestRuns": int(group["TestRuns"].sum()),
            "TestResults": int(group["TestResults"].sum()),
            "TestsFailed": int(group["TestsFailed"].sum()),
            "TestsPassedOnRerun": int(group["TestsPassedOnRerun"].sum()),
            "SummarizedAt": stamp,
            "IngestedAt": stamp,
        })
    return rows


def summarize_daily(
    warehouse: Warehouse, settings: Settings, now: datetime | None = None, dry_run: bool = False
) -> SummaryResult:
    """(Re)compute DailyBuildSummary for the days that need it and load it (unless *dry_run*)."""
    now = now or datetime.now(UTC)
    rows = compute_daily(warehouse, days_to_summarize(warehouse, settings, now), now)
    if rows and not dry_run:
        warehouse.ingest(SUMMARY_TABLE, rows, f"daily-summary-{floor_day(now):%Y%m%d}-{now:%H%M%S%f}")
        return SummaryResult(rows, written=True)
    return SummaryResult(rows, written=False)


# ---------------------------------------------------------------------------
# Deleting expired rows (local store)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expired:
    """Rows of one table older than its cutoff: deleted, or counted in a dry run."""

    table: str
    days: int
    cutoff: datetime
    rows: int


def _predicate(table: str, columns: set[str]) -> tuple[str, int]:
    """SQL condition for an expired row of *table*, and how many cutoff parameters it takes."""
    if table == "BuildStages":
        # Stages go with their metrics document; a stage whose document is gone goes by its own time.
        doc_expired = ('EXISTS (SELECT 1 FROM "BuildMetrics" m WHERE m."Source" = s."Source" AND m."Key" = s."Key" '
                       'AND COALESCE(m."EndTime", m."IngestedAt") < ?)')
        orphan = ('(NOT EXISTS (SELECT 1 FROM "BuildMetrics" m WHERE m."Source" = s."Source" AND m."Key" = s."Key") '
                  'AND COALESCE(s."QueueTime", s."IngestedAt") < ?)')
        return f"{doc_expired} OR {orphan}", 2
    column = TIME_COLUMNS.get(table)
    if column and column in columns:
        return f'COALESCE(s."{column}", s."IngestedAt") < ?', 1
    return 's."IngestedAt" < ?', 1


def _ordered(tables: list[str]) -> list[str]:
    # BuildStages decide by their BuildMetrics rows, so they go first.
    return sorted(tables, key=lambda t: (t != "BuildStages", t))


def delete_expired(warehouse: Any, settings: Settings, now: datetime, dry_run: bool = False) -> list[Expired]:
    """Delete (or count, in a dry run) expired rows of every table on the local store, in one transaction."""
    present = warehouse.list_tables()
    schemas = load_tables()
    out: list[Expired] = []
    statements: list[tuple[str, str, list[Any], int, datetime]] = []
    for table in _ordered([t for t in schemas if t in present]):
        limit = cutoff(table, settings, now)
        days = period_days(table, settings)
        if limit is None or days is None:
            continue
        where, n = _predicate(table, {c for c, _ in present[table]})
        statements.append((table, where, [limit] * n, days, limit))
    counts: dict[str, int] = {}
    for table, where, params, _, _ in statements:
        counts[table] = int(warehouse.execute_sql(f'SELECT count(*) FROM "{table}" s WHERE {where}', params)[0][0])
    if not dry_run and any(counts.values()):
        warehouse.execute_sql("BEGIN TRANSACTION")
        try:
            for table, where, params, _, _ in statements:
                if counts[table]:
                    warehouse.execute_sql(f'DELETE FROM "{table}" s WHERE {where}', params)
            warehouse.execute_sql("COMMIT")
        except Exception:
            warehouse.execute_sql("ROLLBACK")
            raise
    for table, _, _, days, limit in statements:
        out.append(Expired(table, days, limit, counts[table]))
    return out


@dataclass
class RetentionReport:
    """What `apply_retention` did: the summary it wrote and the rows it deleted (local) or left to policy."""

    summary: SummaryResult
    expired: list[Expired]
    backend: str
    dry_run: bool

    def lines(self) -> list[str]:
        """Human-readable report, one line per table with expired rows."""
        verb = "would " if self.dry_run else ""
        out = [f"{SUMMARY_TABLE}: {verb}{'write' if self.dry_run else 'wrote'} {len(self.summary.rows)} row(s) "
               f"covering {self.summary.days} day(s)"]
        if self.backend != "local":
            out.append("raw tables: deleted by the cluster's retention policies (written by `schema apply`): "
                       "details tables keep the details period, the others the builds period")
            return out
        for item in self.expired:
            if item.rows:
                out.append(f"{item.table}: {verb}delete{'' if self.dry_run else 'd'} {item.rows} row(s) older than "
                           f"{item.cutoff:%Y-%m-%d} ({item.days} days)")
        if not any(item.rows for item in self.expired):
            out.append("no expired rows")
        return out


def apply_retention(
    warehouse: Warehouse, settings: Settings, now: datetime | None = None, dry_run: bool = False
) -> RetentionReport:
    """Summarize first, then delete expired raw rows (local store only; the cluster's policy does the rest)."""
    now = now or datetime.now(UTC)
    summary = summarize_daily(warehouse, settings, now, dry_run=dry_run)
    if warehouse.expires_rows:
        return RetentionReport(summary, [], settings.warehouse.kind, dry_run)
    expired = delete_expired(warehouse, settings, now, dry_run=dry_run)
    return RetentionReport(summary, expired, "local", dry_run)
