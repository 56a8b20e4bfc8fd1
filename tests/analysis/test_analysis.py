"""CI health and flakiness formulas on small hand-made frames, with exact values."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from etl.analysis import flaky, health

T0 = datetime(2026, 3, 1)


def builds(rows: list[tuple]) -> pd.DataFrame:
    """(BuildId, Result, hours after T0, branch, kind, attempts, duration s) → a builds_in_period frame."""
    return pd.DataFrame([
        {"Organization": "o", "Project": "p", "BuildId": b, "Definition": "ci\\main", "Result": r,
         "QueueTime": T0 + timedelta(hours=h), "FinishTime": T0 + timedelta(hours=h, minutes=30), "SourceBranch": br,
         "BuildKind": kind, "Attempts": att, "DurationSeconds": dur, "QueueSeconds": 60.0, "PullRequestNumber": b * 10,
         "SourceVersion": f"c{b}"}
        for b, r, h, br, kind, att, dur in rows
    ])


MAIN = "refs/heads/main"


def test_pass_rate_excludes_canceled_and_shows_partially_succeeded_apart() -> None:
    b = builds([(1, "succeeded", 0, MAIN, "Rolling", 1, 60), (2, "failed", 1, MAIN, "Rolling", 1, 60),
                (3, "canceled", 2, MAIN, "Rolling", 1, 60), (4, "partiallySucceeded", 3, MAIN, "Rolling", 1, 60),
                (5, "succeeded", 4, MAIN, "Rolling", 1, 60)])
    assert health.pass_rate(b) == {"n": 5, "succeeded": 2, "failed": 1, "partially_succeeded": 1, "canceled": 1, "pass_rate": 0.5}


def test_pass_rate_by_reports_n_without_canceled() -> None:
    b = builds([(1, "succeeded", 0, MAIN, "Rolling", 1, 60), (2, "canceled", 1, MAIN, "Rolling", 1, 60)])
    row = health.pass_rate_by(b).iloc[0]
    assert (row["n"], row["pass_rate"]) == (1, 1.0)


def test_time_to_green_runs_from_first_red_to_next_green_skipping_canceled() -> None:
    b = builds([(1, "succeeded", 0, MAIN, "Rolling", 1, 60), (2, "failed", 1, MAIN, "Rolling", 1, 60),
                (3, "canceled", 2, MAIN, "Rolling", 1, 60), (4, "failed", 3, MAIN, "Rolling", 1, 60),
                (5, "succeeded", 5, MAIN, "Rolling", 1, 60), (6, "failed", 6, MAIN, "Rolling", 1, 60),
                (7, "failed", 7, "refs/heads/feature", "Rolling", 1, 60)])
    streaks = health.time_to_green(b, [MAIN])
    assert streaks["FirstRedBuild"].tolist() == [2, 6]
    assert streaks["RedBuilds"].tolist() == [2, 1]
    assert streaks["Hours"].iloc[0] == 4.0
    assert pd.isna(streaks["Hours"].iloc[1])  # still red at the end of the period
    assert health.median_time_to_green(streaks) == 4.0


def test_retries_count_builds_with_a_rerun_job_and_minutes_of_the_attempts_before_the_last() -> None:
    jobs = pd.DataFrame([
        {"Organization": "o", "Project": "p", "BuildId": 1, "Identifier": "build_linux", "Name": "Linux", "Attempt": 1, "Result": "failed", "DurationSeconds": 600.0},
        {"Organization": "o", "Project": "p", "BuildId": 1, "Identifier": "build_linux", "Name": "Linux", "Attempt": 2, "Result": "failed", "DurationSeconds": 300.0},
        {"Organization": "o", "Project": "p", "BuildId": 1, "Identifier": "build_linux", "Name": "Linux", "Attempt": 3, "Result": "succeeded", "DurationSeconds": 900.0},
        {"Organization": "o", "Project": "p", "BuildId": 1, "Identifier": "build_win", "Name": "Windows", "Attempt": 1, "Result": "succeeded", "DurationSeconds": 120.0},
        {"Organization": "o", "Project": "p", "BuildId": 2, "Identifier": "build_linux", "Name": "Linux", "Attempt": 1, "Result": "succeeded", "DurationSeconds": 100.0},
    ])
    b = builds([(1, "succeeded", 0, MAIN, "Rolling", 3, 60), (2, "succeeded", 1, MAIN, "Rolling", 1, 60),
                (3, "succeeded", 2, MAIN, "Rolling", 1, 60), (4, "succeeded", 3, MAIN, "Rolling", 1, 60)])
    assert health.retries(jobs, b) == {"n": 4, "retried_builds": 1, "retry_rate": 0.25, "retried_jobs": 1, "minutes_wasted": 15.0}


def test_first_attempt_pass_rate_counts_pr_builds_that_needed_no_retry() -> None:
    b = builds([(1, "succeeded", 0, "refs/pull/1/merge", "PullRequest", 1, 60),
                (2, "succeeded", 1, "refs/pull/2/merge", "PullRequest", 2, 60),
                (3, "failed", 2, "refs/pull/3/merge", "PullRequest", 1, 60),
                (4, "canceled", 3, "refs/pull/4/merge", "PullRequest", 1, 60),
                (5, "succeeded", 4, MAIN, "Rolling", 1, 60)])
    assert health.first_attempt_pass_rate(b) == {"n": 3, "first_attempt_passed": 1, "first_attempt_pass_rate": 1 / 3}


def test_duration_percentiles_use_successful_builds_only() -> None:
    b = builds([(i, "succeeded", i, MAIN, "Rolling", 1, 60.0 * i) for i in range(1, 11)] + [(99, "failed", 20, MAIN, "Rolling", 1, 60000.0)])
    row = health.duration_percentiles(b).iloc[0]
    assert (row["n"], row["p50_minutes"], row["p90_minutes"]) == (10, 5.5, 9.1)


def test_week_over_week_compares_the_last_seven_days_with_the_seven_before() -> None:
    b = builds([(1, "succeeded", 24 * 1, MAIN, "Rolling", 1, 60), (2, "failed", 24 * 2, MAIN, "Rolling", 1, 60),
                (3, "succeeded", 24 * 8, MAIN, "Rolling", 1, 60), (4, "succeeded", 24 * 9, MAIN, "Rolling", 1, 60)])
    row = health.week_over_week(b, end=T0 + timedelta(days=14)).iloc[0]
    assert (row["n_this_week"], row["pass_rate_this_week"], row["n_last_week"], row["pass_rate_last_week"]) == (2, 1.0, 2, 0.5)
    assert row["change_points"] == 50.0


def test_failure_kinds_split_infrastructure_from_code_with_unclassified_named() -> None:
    issues = pd.DataFrame({"BuildId": [1, 1, 2, 3], "FailureOrigin": ["infrastructure", "infrastructure", "code", ""],
                           "FailureCategory": ["agent_lost", "agent_lost", "compile_error", None]})
    kinds = health.failure_kinds(issues)
    assert kinds[["FailureOrigin", "FailureCategory", "Issues", "Builds"]].values.tolist() == [
        ["infrastructure", "agent_lost", 2, 1], ["code", "compile_error", 1, 1], ["unclassified", "unclassified", 1, 1]]
    assert health.origin_split(issues) == {"code": 1, "infrastructure": 1, "unclassified": 1}


def results(rows: list[tuple]) -> pd.DataFrame:
    """(RunId, BuildId, commit, test, outcome, passed_on_rerun) → a test_results_in_period frame."""
    return pd.DataFrame([
        {"Organization": "o", "Project": "p", "RunId": run, "ResultId": i, "BuildId": b, "Attempt": 1, "TestName": t,
         "Outcome": out, "PassedOnRerun": rerun, "SourceVersion": c, "QueueTime": T0 + timedelta(hours=b), "DurationMs": 1000.0}
        for i, (run, b, c, t, out, rerun) in enumerate(rows)
    ])


THRESH = flaky.FlakyThresholds(min_results=4, min_commits=2, min_rate=0.01, outage_min_results=4)


def test_a_test_that_passed_and_failed_on_the_same_commit_twice_is_flaky() -> None:
    r = results([(1, 1, "a", "T.flaky", "Failed", False), (2, 2, "a", "T.flaky", "Passed", False),
                 (3, 3, "b", "T.flaky", "Passed", True), (4, 4, "c", "T.flaky", "Passed", False),
                 (5, 5, "d", "T.flaky", "Passed", False)])
    row = flaky.test_stats(r, THRESH).iloc[0]
    assert (row["Kind"], row["Commits"], row["FlakyCommits"], row["FlipRate"]) == ("flaky", 4, 2, 0.5)


def test_one_flaky_commit_is_below_the_min_commits_threshold() -> None:
    r = results([(1, 1, "a", "T.once", "Failed", False), (2, 2, "a", "T.once", "Passed", False),
                 (3, 3, "b", "T.once", "Passed", False), (4, 4, "c", "T.once", "Passed", False)])
    assert flaky.test_stats(r, THRESH).iloc[0]["Kind"] == "ok"


def test_a_test_failing_on_every_commit_since_it_broke_is_broken_not_flaky() -> None:
    r = results([(1, 1, "a", "T.broken", "Passed", False), (2, 2, "b", "T.broken", "Failed", False),
                 (3, 3, "b", "T.broken", "Failed", False), (4, 4, "c", "T.broken", "Failed", False),
                 (5, 5, "d", "T.broken", "Failed", False)])
    assert flaky.test_stats(r, THRESH).iloc[0]["Kind"] == "broken"


def test_runs_where_most_tests_failed_at_once_are_excluded_as_outages() -> None:
    # run 9: 4 of 5 tests failed at once on commit "a" → excluded, so T.x has no flaky commit at all
    rows = [(9, 9, "a", f"T.{n}", "Failed", False) for n in "wxyz"] + [(9, 9, "a", "T.v", "Passed", False)]
    rows += [(i, i, "a" if i < 3 else f"c{i}", "T.x", "Passed", False) for i in range(1, 6)]
    kept, outages = flaky.exclude_outages(results(rows), THRESH)
    assert outages["RunId"].tolist() == [9]
    assert len(kept) == 5
    stats = flaky.test_stats(results(rows), THRESH)
    assert stats.set_index("TestName").loc["T.x", "FlakyCommits"] == 0


def test_impact_counts_failed_builds_prs_and_their_machine_minutes() -> None:
    r = results([(1, 1, "a", "T.f", "Failed", False), (2, 2, "b", "T.f", "Failed", False), (3, 3, "c", "T.f", "Passed", True)])
    b = builds([(1, "failed", 0, "refs/pull/1/merge", "PullRequest", 1, 600), (2, "failed", 1, MAIN, "Rolling", 1, 1200),
                (3, "succeeded", 2, MAIN, "Rolling", 1, 60)])
    assert flaky.impact(r, b, ["T.f"]).iloc[0].tolist() == ["T.f", 2, 1, 30.0]


def test_new_flaky_are_flaky_now_and_not_before() -> None:
    now = pd.DataFrame({"TestName": ["A", "B", "C"], "Kind": ["flaky", "flaky", "ok"]})
    before = pd.DataFrame({"TestName": ["A", "C"], "Kind": ["flaky", "flaky"]})
    assert flaky.new_flaky(now, before)["TestName"].tolist() == ["B"]


def test_a_job_that_failed_then_passed_on_retry_is_a_flaky_job() -> None:
    jobs = pd.DataFrame([
        {"Organization": "o", "Project": "p", "BuildId": 1, "Definition": "d", "Name": "Linux", "Attempt": 1, "Result": "failed"},
        {"Organization": "o", "Project": "p", "BuildId": 1, "Definition": "d", "Name": "Linux", "Attempt": 2, "Result": "succeeded"},
        {"Organization": "o", "Project": "p", "BuildId": 2, "Definition": "d", "Name": "Linux", "Attempt": 1, "Result": "succeeded"},
        {"Organization": "o", "Project": "p", "BuildId": 2, "Definition": "d", "Name": "Windows", "Attempt": 1, "Result": "failed"},
    ])
    assert flaky.flaky_jobs(jobs).values.tolist() == [["d", "Linux", 1, 2, 0.5]]


@pytest.mark.parametrize("empty", [pd.DataFrame(columns=["Result", "BuildId"])])
def test_empty_periods_give_nan_rates_not_errors(empty: pd.DataFrame) -> None:
    assert health.pass_rate(empty)["n"] == 0
    assert pd.isna(health.pass_rate(empty)["pass_rate"])


def test_branch_group_folds_pull_request_refs() -> None:
    b = pd.DataFrame({"SourceBranch": ["refs/heads/main", "refs/pull/12/merge", None]})
    assert health.branch_group(b).tolist() == ["refs/heads/main", "pull requests", ""]
