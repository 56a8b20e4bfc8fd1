"""Retention: expired raw rows are deleted on the local store, after their days are kept in DailyBuildSummary."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.config import Settings, load_config
from etl.retention import apply_retention, cutoff, summarize_daily
from etl.warehouse.local import LocalWarehouse

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD_DAY = "2024-05-20"  # older than builds_days (730): the build rows themselves expire
MID_DAY = "2026-01-15"  # within builds_days, older than details_days (90): only the details expire
NEW_DAY = "2026-05-30"  # within both periods


def build(build_id: int, day: str, result: str, duration: float, definition: str = "ci") -> dict[str, Any]:
    return {
        "Organization": "contoso", "Project": "eng", "BuildId": build_id, "Definition": definition,
        "DefinitionId": 7, "Result": result, "DurationSeconds": duration,
        "QueueTime": f"{day}T09:00:00Z", "FinishTime": f"{day}T10:00:00Z", "IngestedAt": f"{day}T11:00:00Z",
    }


def results(build_id: int, day: str, outcomes: list[str], run_id: int) -> list[dict[str, Any]]:
    return [
        {"Organization": "contoso", "Project": "eng", "RunId": run_id, "ResultId": i, "BuildId": build_id,
         "Outcome": outcome, "QueueTime": f"{day}T09:00:00Z", "IngestedAt": f"{day}T11:00:00Z"}
        for i, outcome in enumerate(outcomes, start=1)
    ]


@pytest.fixture
def settings(write_config: Callable[..., Path]) -> Settings:
    return load_config(write_config({
        "sources": [{"kind": "inbox", "name": "uploads", "path": "inbox"}],
        "warehouse": {"kind": "local", "path": "warehouse.duckdb"},
        "retention": {"builds_days": 730, "details_days": 90},
    }))


@pytest.fixture
def store(warehouse: LocalWarehouse) -> LocalWarehouse:
    """Six builds over three days with test results, test runs and ETL runs."""
    warehouse.ingest("TimelineBuilds", [
        build(1, OLD_DAY, "succeeded", 100), build(2, OLD_DAY, "failed", 300),
        build(3, MID_DAY, "partiallySucceeded", 200),
        build(4, NEW_DAY, "succeeded", 10), build(5, NEW_DAY, "succeeded", 20), build(6, NEW_DAY, "canceled", 60),
    ], "b")
    warehouse.ingest("TestResults", [
        *results(1, OLD_DAY, ["Passed", "Failed", "Passed"], run_id=11),
        *results(3, MID_DAY, ["Failed", "Passed"], run_id=13),
        *results(4, NEW_DAY, ["Passed", "Passed", "Failed", "NotExecuted"], run_id=14),
    ], "b")
    warehouse.ingest("TestRuns", [
        {"Organization": "contoso", "Project": "eng", "BuildId": b, "RunId": 10 + b, "QueueTime": f"{d}T09:00:00Z",
         "IngestedAt": f"{d}T11:00:00Z"} for b, d in ((1, OLD_DAY), (3, MID_DAY), (4, NEW_DAY))
    ], "b")
    warehouse.ingest("EtlRuns", [
        {"RunId": "old", "Organization": "contoso", "Project": "eng", "StartedAt": "2024-01-01T00:00:00Z",
         "Status": "succeeded", "IngestedAt": "2024-01-01T00:10:00Z"},
        {"RunId": "new", "Organization": "contoso", "Project": "eng", "StartedAt": "2026-05-31T00:00:00Z",
         "Status": "succeeded", "IngestedAt": "2026-05-31T00:10:00Z"},
    ], "b")
    return warehouse


def summary(warehouse: LocalWarehouse) -> list[dict[str, Any]]:
    frame = warehouse.query(
        "LatestDailyBuildSummary | project Day, Definition, Builds, Succeeded, PartiallySucceeded, Failed, Canceled,"
        " DurationAvgSeconds, DurationP50Seconds, DurationMaxSeconds, TestRuns, TestResults, TestsFailed"
    ).sort_values("Day")
    frame["Day"] = frame["Day"].dt.strftime("%Y-%m-%d")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


EXPECTED_SUMMARY = [
    {"Day": OLD_DAY, "Definition": "ci", "Builds": 2, "Succeeded": 1, "PartiallySucceeded": 0, "Failed": 1,
     "Canceled": 0, "DurationAvgSeconds": 200.0, "DurationP50Seconds": 200.0, "DurationMaxSeconds": 300.0,
     "TestRuns": 1, "TestResults": 3, "TestsFailed": 1},
    {"Day": MID_DAY, "Definition": "ci", "Builds": 1, "Succeeded": 0, "PartiallySucceeded": 1, "Failed": 0,
     "Canceled": 0, "DurationAvgSeconds": 200.0, "DurationP50Seconds": 200.0, "DurationMaxSeconds": 200.0,
     "TestRuns": 1, "TestResults": 2, "TestsFailed": 1},
    {"Day": NEW_DAY, "Definition": "ci", "Builds": 3, "Succeeded": 2, "PartiallySucceeded": 0, "Failed": 0,
     "Canceled": 1, "DurationAvgSeconds": 30.0, "DurationP50Seconds": 20.0, "DurationMaxSeconds": 60.0,
     "TestRuns": 1, "TestResults": 4, "TestsFailed": 1},
]


def test_cutoffs_fall_on_utc_midnight_of_each_period(settings: Settings) -> None:
    assert cutoff("TimelineBuilds", settings, NOW) == datetime(2024, 6, 1)
    assert cutoff("TestResults", settings, NOW) == datetime(2026, 3, 3)
    assert cutoff("DailyBuildSummary", settings, NOW) is None


def test_builds_older_than_the_builds_period_are_deleted_and_newer_kept(store: LocalWarehouse, settings: Settings) -> None:
    apply_retention(store, settings, NOW)
    assert sorted(store.query("TimelineBuilds | project BuildId")["BuildId"]) == [3, 4, 5, 6]


def test_details_older_than_the_details_period_are_deleted_and_newer_kept(
    store: LocalWarehouse, settings: Settings
) -> None:
    apply_retention(store, settings, NOW)
    assert sorted(store.query("TestResults | project BuildId")["BuildId"]) == [4, 4, 4, 4]
    assert sorted(store.query("TestRuns | project BuildId")["BuildId"]) == [4]


def test_etl_runs_older_than_the_builds_period_are_deleted(store: LocalWarehouse, settings: Settings) -> None:
    apply_retention(store, settings, NOW)
    assert list(store.query("EtlRuns | project RunId")["RunId"]) == ["new"]


def test_a_store_that_expires_rows_itself_gets_the_summary_and_no_delete(
    store: LocalWarehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "expires_rows", True)  # as Kusto, whose retention policy drops rows
    report = apply_retention(store, settings, NOW)
    assert report.expired == []
    assert sorted(store.query("TimelineBuilds | project BuildId")["BuildId"]) == [1, 2, 3, 4, 5, 6]
    assert summary(store) == EXPECTED_SUMMARY


def test_the_summary_keeps_the_counts_of_expired_rows(store: LocalWarehouse, settings: Settings) -> None:
    apply_retention(store, settings, NOW)
    assert summary(store) == EXPECTED_SUMMARY


def test_a_later_run_keeps_the_summary_of_days_whose_raw_rows_are_gone(
    store: LocalWarehouse, settings: Settings
) -> None:
    apply_retention(store, settings, NOW)
    apply_retention(store, settings, NOW + timedelta(days=1))
    assert summary(store) == EXPECTED_SUMMARY


def test_recent_days_are_recomputed_when_new_builds_arrive(store: LocalWarehouse, settings: Settings) -> None:
    apply_retention(store, settings, NOW)
    store.ingest("TimelineBuilds", [build(7, NEW_DAY, "failed", 30)], "late")
    summarize_daily(store, settings, NOW)
    newest = summary(store)[-1]
    assert (newest["Builds"], newest["Failed"], newest["DurationAvgSeconds"], newest["DurationP50Seconds"]) == (
        4, 1, 30.0, 25.0)


def test_report_lines_name_each_table_and_its_deleted_rows(store: LocalWarehouse, settings: Settings) -> None:
    report = apply_retention(store, settings, NOW)
    assert report.lines() == [
        "DailyBuildSummary: wrote 3 row(s) covering 3 day(s)",
        "EtlRuns: deleted 1 row(s) older than 2024-06-01 (730 days)",
        "TestResults: deleted 5 row(s) older than 2026-03-03 (90 days)",
        "TestRuns: deleted 2 row(s) older than 2026-03-03 (90 days)",
        "TimelineBuilds: deleted 2 row(s) older than 2024-06-01 (730 days)",
    ]


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(store: LocalWarehouse, settings: Settings) -> None:
    report = apply_retention(store, settings, NOW, dry_run=True)
    assert report.lines()[:2] == [
        "DailyBuildSummary: would write 3 row(s) covering 3 day(s)",
        "EtlRuns: would delete 1 row(s) older than 2024-06-01 (730 days)",
    ]
    assert store.query("TimelineBuilds | count").iloc[0, 0] == 6
    assert store.query("DailyBuildSummary | count").iloc[0, 0] == 0


def test_build_stages_expire_with_their_metrics_document(warehouse: LocalWarehouse, settings: Settings) -> None:
    doc = {"Source": "uploads", "Organization": "contoso", "Project": "eng"}
    warehouse.ingest("BuildMetrics", [
        {**doc, "Key": "old", "EndTime": "2024-01-01T00:00:00Z", "IngestedAt": "2026-05-01T00:00:00Z"},
        {**doc, "Key": "new", "EndTime": "2026-05-01T00:00:00Z", "IngestedAt": "2026-05-01T00:00:00Z"},
    ], "b")
    warehouse.ingest("BuildStages", [
        {**doc, "Key": key, "StageIndex": i, "Stage": f"s{i}", "IngestedAt": "2026-05-01T00:00:00Z"}
        for key in ("old", "new") for i in range(2)
    ], "b")
    apply_retention(warehouse, settings, NOW)
    assert sorted(warehouse.query("BuildStages | project Key")["Key"]) == ["new", "new"]
    assert list(warehouse.query("BuildMetrics | project Key")["Key"]) == ["new"]


def test_the_summary_table_itself_is_never_trimmed(warehouse: LocalWarehouse, settings: Settings) -> None:
    warehouse.ingest("DailyBuildSummary", [{"Organization": "o", "Project": "p", "Definition": "d",
                                            "Day": "2015-01-01", "Builds": 9, "IngestedAt": "2015-01-02"}], "b")
    apply_retention(warehouse, settings, NOW)
    assert warehouse.query("DailyBuildSummary | project Builds")["Builds"].tolist() == [9]


def test_daily_build_trend_reads_the_summary_with_rates(store: LocalWarehouse, settings: Settings) -> None:
    apply_retention(store, settings, NOW)
    frame = store.query("DailyBuildTrend() | where Day == datetime(2026-05-30) "
                        "| project Builds, SuccessRate, TestFailureRate")
    assert frame.to_dict("records") == [{"Builds": 3, "SuccessRate": 2 / 3, "TestFailureRate": 0.25}]


def test_retention_apply_command_summarizes_then_deletes(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = write_config({
        "sources": [{"kind": "inbox", "name": "uploads", "path": "inbox"}],
        "warehouse": {"kind": "local", "path": "cli.duckdb"},
        "retention": {"builds_days": 30, "details_days": 10},
    })
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%d")
    new = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    wh = LocalWarehouse(tmp_path / "cli.duckdb")
    wh.apply_schema()
    wh.ingest("TimelineBuilds", [build(1, old, "failed", 5), build(2, new, "succeeded", 5)], "b")
    wh.close()
    result = CliRunner().invoke(app, ["retention", "apply", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "DailyBuildSummary: wrote 2 row(s) covering 2 day(s)",
        f"TimelineBuilds: deleted 1 row(s) older than "
        f"{(datetime.now(UTC) - timedelta(days=30)).strftime('%Y-%m-%d')} (30 days)",
    ]


def test_the_summary_is_computed_the_same_through_a_kusto_endpoint(store: LocalWarehouse, settings: Settings) -> None:
    """The cluster code path (queries with a datetime parameter) via azure-kusto-data; a dry run, as the
    endpoint has no ingestion service."""
    import threading

    from etl.config import KustoWarehouse as KustoSettings
    from etl.warehouse.kusto import KustoWarehouse
    from etl.warehouse.serve import build_server

    expected = summarize_daily(store, settings, NOW, dry_run=True).rows
    path = store.path
    store.close()
    server = build_server(path, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    kusto = KustoWarehouse(KustoSettings(cluster_url=server.url, database="warehouse", auth="none"))
    try:
        got = summarize_daily(kusto, settings, NOW, dry_run=True)
    finally:
        kusto.close()
        server.shutdown()
        server.server_close()
    assert (got.written, got.rows) == (False, expected)
    assert [r["Builds"] for r in got.rows] == [2, 1, 3]
