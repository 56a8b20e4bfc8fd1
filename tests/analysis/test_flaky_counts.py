"""Flakiness counted in the store (test_stats_in_period and its siblings) gives exactly flaky.test_stats' answer."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from etl.analysis import flaky
from etl.analysis.data import Period, load
from etl.warehouse.local import LocalWarehouse

T0 = datetime(2026, 3, 1)
PERIOD = Period(T0, T0 + timedelta(days=2))
THRESH = flaky.FlakyThresholds(min_results=4, min_commits=2, min_rate=0.01, outage_min_results=4)


def _rows() -> list[dict]:
    """Flaky, broken, healthy, renamed-to-nothing and outage results over two days, some without a commit."""
    spec = [(9, 9, "a", f"T.{n}", "Failed", False) for n in "wxyz"] + [(9, 9, "a", "T.v", "Passed", False)]
    spec += [(i, i, "a" if i < 3 else f"c{i}", "T.x", "Passed", False) for i in range(1, 6)]
    spec += [(1, 1, "a", "T.flaky", "Failed", False), (2, 2, "a", "T.flaky", "Passed", False),
             (3, 3, "b", "T.flaky", "Passed", True), (4, 4, "", "T.flaky", "Passed", False),
             (5, 5, "", "T.flaky", "Failed", None)]
    spec += [(1, 1, "a", "T.broken", "Passed", False), (2, 2, "b", "T.broken", "Failed", False),
             (3, 3, "b", "T.broken", "Failed", False), (4, 4, "c", "T.broken", "Failed", False),
             (5, 5, "d", "T.broken", "Timeout", False), (6, 6, "e", None, "Failed", False)]
    return [{"Organization": "o", "Project": "p", "RunId": run, "ResultId": i, "BuildId": b, "Attempt": 1, "TestName": t,
             "Outcome": out, "PassedOnRerun": rerun, "SourceVersion": c or None, "QueueTime": T0 + timedelta(hours=b),
             "Definition": "ci\\main"}
            for i, (run, b, c, t, out, rerun) in enumerate(spec)]


@pytest.fixture
def store(warehouse: LocalWarehouse) -> LocalWarehouse:
    warehouse.ingest("TestResults", _rows(), "b1")
    return warehouse


def test_counts_from_the_store_equal_test_stats_over_every_result(store: LocalWarehouse) -> None:
    counts = flaky.outage_parameters(THRESH)
    expected = flaky.test_stats(load(store, "test_results_in_period", PERIOD), THRESH)
    got = flaky.stats_from_counts(load(store, "test_stats_in_period", PERIOD, **counts),
                                  load(store, "test_hard_commits_in_period", PERIOD, **counts), THRESH)
    pd.testing.assert_frame_equal(got, expected)
    assert dict(zip(got["TestName"], got["Kind"], strict=True)) == {
        "T.flaky": "flaky", "T.broken": "broken", "T.x": "ok"}  # T.v ran only in the outage run


def test_outage_runs_and_failures_from_the_store_equal_the_row_wise_answers(store: LocalWarehouse) -> None:
    results = load(store, "test_results_in_period", PERIOD)
    outages = load(store, "test_outages_in_period", PERIOD, **flaky.outage_parameters(THRESH))
    pd.testing.assert_frame_equal(outages, flaky.exclude_outages(results, THRESH)[1])
    builds = pd.DataFrame([{"Organization": "o", "Project": "p", "BuildId": b, "Result": "failed", "BuildKind": "Rolling",
                            "PullRequestNumber": None, "DurationSeconds": 60.0 * b} for b in range(1, 10)])
    tests = ["T.flaky", "T.broken"]
    pd.testing.assert_frame_equal(flaky.impact(load(store, "test_failures_in_period", PERIOD), builds, tests),
                                  flaky.impact(results, builds, tests))
