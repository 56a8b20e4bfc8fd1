"""bench/scale.py's builder: a tiny dnceng-shaped store through the ETL's ingest path, read by every report query."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bench import scale
from etl.analysis.data import Period
from etl.warehouse.base import run_query_file
from etl.warehouse.local import LocalWarehouse

END = datetime(2026, 12, 1)
QUERIES = sorted(p.stem for p in (Path(scale.ROOT) / "kql" / "queries").glob("*.kql"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    wh = LocalWarehouse(tmp_path_factory.mktemp("scale") / "scale.duckdb")
    wh.apply_schema()
    sent = scale.build(wh, 0.0002, END)  # 10 builds: the smallest store
    yield wh, sent
    wh.close()


def test_builder_writes_exact_row_counts_per_table(store) -> None:
    wh, sent = store
    stored = {t: wh.execute_sql(f'SELECT count(*) FROM "{t}"')[0][0] for t in sent}
    assert stored == sent == {
        "TimelineBuilds": 10, "TimelineRecords": 5_000, "TimelineIssues": 52, "TestRuns": 40,
        "TestResults": 1_000, "BuildMetrics": 10, "BuildStages": 40, "MetricSamples": 80,
        "KnownIssueMatches": 10, "DailyBuildSummary": 10, "EtlRuns": 180,
    }
    assert scale.expected_counts(0.0002) == sent


def test_retried_builds_hold_two_attempts_of_two_jobs(store) -> None:
    wh, _ = store
    rows = wh.execute_sql('SELECT count(DISTINCT BuildId), count(*) FROM "TimelineRecords" WHERE Attempt = 2')
    assert rows == [(2, 4)]


@pytest.mark.parametrize("query", QUERIES)
def test_every_report_query_runs_on_the_scale_store(store, query: str) -> None:
    wh, _ = store
    params = {**Period.last_days(28, end=END).params(), "status": "", "alertKind": "", "channel": "", "metric": "",
              "platform": ""}
    text = (Path(scale.ROOT) / "kql" / "queries" / f"{query}.kql").read_text(encoding="utf-8")
    declared = text.split("declare query_parameters(", 1)[1].split(");", 1)[0]
    frame = run_query_file(wh, query, {k: v for k, v in params.items() if f"{k}:" in declared})
    assert list(frame.columns)  # the query compiled and returned its columns


def test_the_period_reads_builds_of_its_days_only(store) -> None:
    wh, _ = store
    builds = run_query_file(wh, "builds_in_period", Period.last_days(28, end=END).params())
    # 10 builds evenly over 90 days (one per 9 days): the last three were queued in the last 28 days.
    assert sorted(builds["BuildId"]) == [1_000_007, 1_000_008, 1_000_009]
    assert builds["QueueTime"].min() >= datetime(2026, 11, 3)
