"""Every `.kql` file of `kql/functions` and `kql/queries` runs on the local engine, with parameters, over a
small seeded store; a few results are checked exactly."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from report_rows import END, START, XSS, seed

from etl.schema import KQL_DIR, function_files, load_tables, view_name
from etl.warehouse import read_query, run_query_file

QUERY_FILES = sorted((KQL_DIR / "queries").glob("*.kql"))
DECLARE = re.compile(r"declare\s+query_parameters\s*\((.*?)\)\s*;", re.S)
PARAM = re.compile(r"(\w+)\s*:\s*(\w+)\s*(=\s*[^,]+)?")
DEFAULTS = {"string": "", "long": 0, "int": 0, "real": 0.0, "bool": False}


@pytest.fixture
def store(warehouse):
    seed(warehouse)
    return warehouse


def required_parameters(text: str) -> dict[str, object]:
    """Values for the declared parameters that have no default: the seeded period for datetimes."""
    match = DECLARE.search(text)
    if not match:
        return {}
    out: dict[str, object] = {}
    for name, kind, default in PARAM.findall(match.group(1)):
        if default:
            continue
        out[name] = (END if name.lower().endswith(("end", "to")) else START) if kind == "datetime" else DEFAULTS.get(kind, "")
    return out


def test_every_query_file_declares_its_parameters_and_reads_latest_views_like_tables() -> None:
    assert QUERY_FILES, "kql/queries is empty"
    for path in QUERY_FILES:
        text = path.read_text(encoding="utf-8")
        assert DECLARE.search(text), f"{path.name}: no declare query_parameters"
        body = DECLARE.split(text)[-1]
        assert re.search(r"\bLatest\w+\b(?!\()", body), f"{path.name}: reads a raw table instead of a Latest<Table> view"


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.stem)
def test_query_file_runs_on_the_local_engine(store, path: Path) -> None:
    frame = store.query(read_query(path), required_parameters(path.read_text(encoding="utf-8")))
    assert isinstance(frame, pd.DataFrame)
    assert len(frame.columns) > 0


SIGNATURE = re.compile(r"^(\w+)\s*\(([^)]*)\)\s*\{", re.M)
LITERALS = {"datetime": f"datetime({START.isoformat()})", "long": "10", "int": "10", "real": "0.0", "bool": "false",
            "string": '""', "timespan": "1d"}


def call_of(text: str) -> str:
    """`Name(arg, ...)` with a typed literal per declared argument (the seeded period's start for datetimes)."""
    match = SIGNATURE.search(text)
    assert match, "no function signature found"
    args = [LITERALS[kind] for _, kind in re.findall(r"\[?'?(\w+)'?\]?\s*:\s*(\w+)", match.group(2))]
    return f"{match.group(1)}({', '.join(args)})"


@pytest.mark.parametrize("path", function_files(), ids=lambda p: p.stem)
def test_stored_function_runs_on_the_local_engine(store, path: Path) -> None:
    frame = store.query(call_of(path.read_text(encoding="utf-8")))
    assert isinstance(frame, pd.DataFrame)
    assert len(frame.columns) > 0


def test_latest_views_hold_one_row_per_key_of_the_seeded_rows(store) -> None:
    counts = {v: int(store.query(f"{v} | count").iloc[0, 0])
              for v in ("LatestTimelineBuilds", "LatestTimelineRecords", "LatestTimelineIssues", "LatestTestResults",
                        "LatestMetricSamples", "LatestEtlRuns")}
    assert counts == {"LatestTimelineBuilds": 46, "LatestTimelineRecords": 43, "LatestTimelineIssues": 3,
                      "LatestTestResults": 120, "LatestMetricSamples": 40, "LatestEtlRuns": 1}



@pytest.mark.parametrize("table", sorted(load_tables()))
def test_a_local_view_reads_the_table_with_the_same_rows_as_deduplicating_it(store, table: str) -> None:
    """The local store keeps one row per key on write, so `Latest<Table>` reads the table and a time
    filter after it reads only the period; the cluster's `arg_max(IngestedAt, *) by key` gives the same rows."""
    schema = load_tables()[table]
    columns = ", ".join(schema.column_names)
    view = store.query(f"{view_name(table)} | project {columns}")
    deduplicated = store.query(f"{table} | summarize arg_max(IngestedAt, *) by {', '.join(schema.key)} | project {columns}")
    order = list(schema.key)
    assert view.sort_values(order).reset_index(drop=True).equals(deduplicated.sort_values(order).reset_index(drop=True))
    assert len(view) == int(store.query(f"{table} | count").iloc[0, 0])


PERIOD = {"start": START, "end": END}


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, 46),
    ({"projectName": "proj"}, 46),
    ({"projectName": "other"}, 0),
    ({"definition": "pr\\validate"}, 6),
    ({"branch": "refs/pull/4/merge"}, 1),
    ({"organization": "https://dev.azure.com/contoso", "definition": "ci\\main"}, 40),
])
def test_builds_in_period_filters_by_parameters(store, filters: dict, expected: int) -> None:
    assert len(run_query_file(store, "builds_in_period", {**PERIOD, **filters})) == expected


def test_builds_in_period_end_is_exclusive(store) -> None:
    # ci\main build i is queued at START + 8 i hours; [START, START + 16 h) holds builds 0 and 1, and PR build 0 (3 h)
    frame = run_query_file(store, "builds_in_period", {"start": START, "end": START + timedelta(hours=16)})
    assert sorted(frame["BuildId"]) == [1000, 1001, 2000]


def test_top_failing_tasks_ranks_by_builds_failed(store) -> None:
    frame = run_query_file(store, "top_failing_tasks", PERIOD)
    assert frame[["Task", "Failures", "Builds"]].values.tolist() == [["DotNetCoreCLI", 2, 2]]


def test_top_signatures_carry_the_latest_example_message_unchanged(store) -> None:
    frame = run_query_file(store, "top_signatures", PERIOD)
    assert frame["Signature"].tolist() == ["error CS<n>: ; expected", "We stopped hearing from agent <agent>"]
    assert frame["Builds"].tolist() == [2, 1]
    assert frame["Message"].iloc[0] == XSS


def test_records_failed_and_jobs_in_period_count_every_attempt(store) -> None:
    assert len(run_query_file(store, "records_failed", PERIOD)) == 5  # 3 failed Linux jobs + 2 failed tasks
    jobs = run_query_file(store, "jobs_in_period", PERIOD)
    assert (len(jobs), int((jobs["Attempt"] == 2).sum())) == (41, 1)


def test_metric_series_filters_by_metric_and_platform(store) -> None:
    assert len(run_query_file(store, "metric_series", {**PERIOD, "metric": "duration_seconds"})) == 40
    assert len(run_query_file(store, "metric_series", {**PERIOD, "platform": "windows"})) == 0


def test_freshness_reports_the_newest_finish_time(store) -> None:
    frame = run_query_file(store, "freshness")
    assert frame["NewestFinishTime"].tolist() == [pd.Timestamp(START + timedelta(hours=8 * 39 + 1))]
    assert frame["Builds"].tolist() == [46]


def test_etl_runs_and_alerts_queries_read_their_views(store) -> None:
    assert run_query_file(store, "etl_runs")["RunId"].tolist() == ["run-1"]
    assert run_query_file(store, "alerts", {"status": "open"}).empty
