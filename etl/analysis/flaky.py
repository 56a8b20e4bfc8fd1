"""Flaky and broken tests, and flaky jobs, from test results and job records.

A test is *flaky* when it both passed and failed on the same commit (SourceVersion) — a rerun inside
one run that passed (PassedOnRerun), or a failed attempt and a passed attempt/build on that commit.
Runs where most tests failed at once (an outage: agent lost, disk full) are excluded first: they
say nothing about any one test. Thresholds (settings.reports): a test needs `min_results` results,
flaky evidence on `min_commits` distinct commits, and a flip rate (flaky commits / commits) of at
least `min_rate`. A test is *broken* (failing consistently) when on each of the last `broken_min_failures`
commits it ran on (in queue-time order) every result failed and no rerun passed: it fails now, on every try.
A test that failed now and then, or broke and was fixed within the period, is not broken.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

PASSED = "Passed"
FAILED_OUTCOMES = ("Failed", "Aborted", "Timeout", "Error")


@dataclass(frozen=True)
class FlakyThresholds:
    """From settings.reports (flaky_min_results, flaky_min_commits, flaky_min_rate)."""

    min_results: int = 30
    min_commits: int = 2
    min_rate: float = 0.01
    outage_fraction: float = 0.5
    outage_min_results: int = 10
    broken_min_failures: int = 3


def exclude_outages(results: pd.DataFrame, thresholds: FlakyThresholds = FlakyThresholds()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept results, excluded runs): a run (RunId) with at least `outage_min_results` results of which more
    than `outage_fraction` failed is an outage."""
    if results.empty:
        return results, pd.DataFrame(columns=["Organization", "Project", "RunId", "BuildId", "Results", "Failed"])
    failed = results["Outcome"].isin(FAILED_OUTCOMES)
    per_run = results.assign(F=failed).groupby(["Organization", "Project", "RunId"]).agg(
        BuildId=("BuildId", "first"), Results=("F", "size"), Failed=("F", "sum")
    ).reset_index()
    outage = per_run[(per_run["Results"] >= thresholds.outage_min_results) & (per_run["Failed"] > thresholds.outage_fraction * per_run["Results"])]
    keep = ~results.set_index(["Organization", "Project", "RunId"]).index.isin(outage.set_index(["Organization", "Project", "RunId"]).index)
    return results[keep], outage.reset_index(drop=True)


def test_stats(results: pd.DataFrame, thresholds: FlakyThresholds = FlakyThresholds()) -> pd.DataFrame:
    """One row per test: results, passes, failures, commits, flaky commits, flip rate and its classification
    (flaky, broken or ok). Outage runs are excluded first."""
    cols = ["TestName", "Results", "Passed", "Failed", "PassedOnRerun", "Commits", "FlakyCommits", "FlipRate",
            "FailRate", "Kind", "FirstSeen", "LastSeen"]
    kept, _ = exclude_outages(results, thresholds)
    if kept.empty:
        return pd.DataFrame(columns=cols)
    r = kept.assign(
        IsPass=kept["Outcome"] == PASSED,
        IsFail=kept["Outcome"].isin(FAILED_OUTCOMES),
        Rerun=kept["PassedOnRerun"].fillna(False).astype(bool),
        Commit=kept["SourceVersion"].fillna("").where(kept["SourceVersion"].fillna("") != "", "build:" + kept["BuildId"].astype(str)),
    )
    per_commit = r.groupby(["TestName", "Commit"]).agg(
        AnyPass=("IsPass", "any"), AnyFail=("IsFail", "any"), Failures=("IsFail", "sum"), Rerun=("Rerun", "any"),
        First=("QueueTime", "min")
    ).reset_index()
    per_commit["Flaky"] = (per_commit["AnyPass"] & per_commit["AnyFail"]) | per_commit["Rerun"]
    per_test = r.groupby("TestName").agg(
        Results=("IsPass", "size"), Passed=("IsPass", "sum"), Failed=("IsFail", "sum"), PassedOnRerun=("Rerun", "sum"),
        FirstSeen=("QueueTime", "min"), LastSeen=("QueueTime", "max"),
    )
    pc = per_commit.groupby("TestName").agg(Commits=("Commit", "size"), FlakyCommits=("Flaky", "sum"))
    out = per_test.join(pc).reset_index()
    out["FlipRate"] = out["FlakyCommits"] / out["Commits"]
    out["FailRate"] = out["Failed"] / out["Results"]
    broken = _broken(per_commit, thresholds)
    out["Kind"] = "ok"
    flaky = (out["Results"] >= thresholds.min_results) & (out["FlakyCommits"] >= thresholds.min_commits) & (out["FlipRate"] >= thresholds.min_rate)
    out.loc[flaky, "Kind"] = "flaky"
    out.loc[out["TestName"].isin(broken), "Kind"] = "broken"
    return out[cols].sort_values(["FlipRate", "FlakyCommits", "TestName"], ascending=[False, False, True]).reset_index(drop=True)


STATS_COLUMNS = ["TestName", "Results", "Passed", "Failed", "PassedOnRerun", "Commits", "FlakyCommits", "FlipRate",
                 "FailRate", "Kind", "FirstSeen", "LastSeen"]


def outage_parameters(thresholds: FlakyThresholds) -> dict[str, object]:
    """The outage thresholds as the parameters of test_stats_in_period.kql and its siblings."""
    return {"outageMinResults": thresholds.outage_min_results, "outageFraction": thresholds.outage_fraction}


def stats_from_counts(per_test: pd.DataFrame, hard_commits: pd.DataFrame,
                      thresholds: FlakyThresholds = FlakyThresholds()) -> pd.DataFrame:
    """`test_stats`, from what the store counted: *per_test* (test_stats_in_period.kql: one row per test, outage
    runs left out) and *hard_commits* (test_hard_commits_in_period.kql: the per-commit rows of the tests that
    hard-failed on some commit, the only ones that can be broken). Same rows, values and order as `test_stats`
    over the period's results, without moving every result into the report kernel."""
    # Results without a test name count towards their run's outage test but belong to no test (as in test_stats).
    per_test = per_test[per_test["TestName"].notna()] if len(per_test) else per_test
    hard_commits = hard_commits[hard_commits["TestName"].notna()] if len(hard_commits) else hard_commits
    if per_test.empty:
        return pd.DataFrame(columns=STATS_COLUMNS)
    out = per_test.copy()
    for column in ("Results", "Passed", "Failed", "PassedOnRerun", "Commits", "FlakyCommits"):
        out[column] = out[column].astype("int64")
    out["FlipRate"] = out["FlakyCommits"] / out["Commits"]
    out["FailRate"] = out["Failed"] / out["Results"]
    broken = _broken(hard_commits, thresholds) if len(hard_commits) else set()
    out["Kind"] = "ok"
    flaky = (out["Results"] >= thresholds.min_results) & (out["FlakyCommits"] >= thresholds.min_commits) & (out["FlipRate"] >= thresholds.min_rate)
    out.loc[flaky, "Kind"] = "flaky"
    out.loc[out["TestName"].isin(broken), "Kind"] = "broken"
    return out[STATS_COLUMNS].sort_values(["FlipRate", "FlakyCommits", "TestName"], ascending=[False, False, True]).reset_index(drop=True)


def _broken(per_commit: pd.DataFrame, thresholds: FlakyThresholds) -> set[str]:
    k = thresholds.broken_min_failures
    hard = per_commit["AnyFail"] & ~per_commit["AnyPass"] & ~per_commit["Rerun"]
    last = per_commit.assign(Hard=hard).sort_values(["TestName", "First", "Commit"]).groupby("TestName").tail(k)
    per_test = last.groupby("TestName")["Hard"].agg(["size", "all"])
    return {str(name) for name in per_test[(per_test["size"] == k) & per_test["all"]].index}


def flaky_tests(stats: pd.DataFrame) -> pd.DataFrame:
    """The flaky rows of test_stats, highest flip rate first."""
    return stats[stats["Kind"] == "flaky"].reset_index(drop=True)


def broken_tests(stats: pd.DataFrame) -> pd.DataFrame:
    """The broken rows of test_stats."""
    return stats[stats["Kind"] == "broken"].reset_index(drop=True)


def impact(results: pd.DataFrame, builds: pd.DataFrame, tests: list[str]) -> pd.DataFrame:
    """Per test: builds that failed while it failed, PRs among them, and the machine minutes of those builds."""
    cols = ["TestName", "FailedBuilds", "FailedPRs", "MachineMinutes"]
    if results.empty or builds.empty or not tests:
        return pd.DataFrame({"TestName": pd.Series(tests, dtype=object), "FailedBuilds": 0, "FailedPRs": 0,
                             "MachineMinutes": 0.0}, columns=cols)
    fails = results[results["TestName"].isin(tests) & results["Outcome"].isin(FAILED_OUTCOMES) & ~results["PassedOnRerun"].fillna(False).astype(bool)]
    b = builds[builds["Result"] == "failed"][["Organization", "Project", "BuildId", "BuildKind", "PullRequestNumber", "DurationSeconds"]]
    joined = fails[["Organization", "Project", "BuildId", "TestName"]].drop_duplicates().merge(b, on=["Organization", "Project", "BuildId"])
    rows = []
    for name in tests:
        g = joined[joined["TestName"] == name]
        prs = g[g["BuildKind"] == "PullRequest"]["PullRequestNumber"].nunique()
        rows.append({"TestName": name, "FailedBuilds": len(g), "FailedPRs": int(prs), "MachineMinutes": float(g["DurationSeconds"].fillna(0).sum() / 60)})
    return pd.DataFrame(rows, columns=cols)


def new_flaky(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Tests flaky in *current* stats that were not flaky in *previous* stats."""
    before = set(previous[previous["Kind"] == "flaky"]["TestName"]) if len(previous) else set()
    return current[(current["Kind"] == "flaky") & ~current["TestName"].isin(before)].reset_index(drop=True)


def flaky_jobs(jobs: pd.DataFrame, job_builds: pd.DataFrame | None = None) -> pd.DataFrame:
    """Jobs (by definition and name) that failed and then succeeded on a retry in the same build; rate over
    the builds that ran the job, with n.

    *jobs*: Job records, every attempt. With *job_builds* (job_builds_in_period.kql: Definition, Name, Builds)
    the denominators come from it, so *jobs* may hold only the builds that retried a job
    (retried_jobs_in_period.kql) — the same answer from a few percent of the rows.
    """
    cols = ["Definition", "Job", "FlakyBuilds", "Builds", "Rate"]
    if jobs.empty:
        return pd.DataFrame(columns=cols)
    keys = ["Organization", "Project", "BuildId", "Definition", "Name"]
    ordered = jobs.assign(Failed=jobs["Result"] == "failed").sort_values("Attempt", kind="stable")
    per = ordered.groupby(keys, dropna=False).agg(
        AnyFailed=("Failed", "any"), Attempts=("Attempt", "max"), FinalResult=("Result", "last")
    ).reset_index()
    per["Flaky"] = per["AnyFailed"] & (per["Attempts"] > 1) & (per["FinalResult"] == "succeeded")
    out = per.groupby(["Definition", "Name"], dropna=False).agg(FlakyBuilds=("Flaky", "sum"), Builds=("Flaky", "size")).reset_index()
    if job_builds is not None and len(job_builds):
        out = out.drop(columns="Builds").merge(job_builds[["Definition", "Name", "Builds"]], on=["Definition", "Name"],
                                               how="left")
    out = out.rename(columns={"Name": "Job"})
    out["Rate"] = out["FlakyBuilds"] / out["Builds"]
    out = out[out["FlakyBuilds"] > 0]
    return out.sort_values(["FlakyBuilds", "Rate"], ascending=False).reset_index(drop=True)[cols]
