"""CI health figures from the rows of `kql/queries/*_in_period.kql`, as plain functions over DataFrames.

Formulas (also in the reports' glossary):
- pass rate = succeeded / (all − canceled); partiallySucceeded counts in the denominator and is shown apart.
- duration percentiles use successful builds only (a failed build stops early and would flatter the figure).
- time to green (main branches): from the first red build (failed) to the next succeeded build of the same
  definition and branch, by finish time; a red streak still open at the end of the period has no duration.
- retry rate = builds with a job run more than once / builds; minutes wasted = duration of every job
  attempt that was followed by another attempt of the same job.
- first-attempt pass rate (PR builds) = PR builds that succeeded with one attempt / (PR builds − canceled).
Every rate comes with its sample size n.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

CANCELED = "canceled"
SUCCEEDED = "succeeded"
FAILED = "failed"
PARTIAL = "partiallySucceeded"


def _rate(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def pass_rate(builds: pd.DataFrame) -> dict[str, float]:
    """Counts by result and pass rate = succeeded / (all − canceled)."""
    result = builds["Result"] if len(builds) else pd.Series(dtype=str)
    counts = {
        "n": len(builds),
        "succeeded": int((result == SUCCEEDED).sum()),
        "failed": int((result == FAILED).sum()),
        "partially_succeeded": int((result == PARTIAL).sum()),
        "canceled": int((result == CANCELED).sum()),
    }
    counts["pass_rate"] = _rate(counts["succeeded"], counts["n"] - counts["canceled"])
    return counts


def pass_rate_by(builds: pd.DataFrame, by: Sequence[str] = ("Definition", "SourceBranch")) -> pd.DataFrame:
    """Pass rate per group, with n (builds excluding canceled) and the counts behind it; lowest rate first."""
    cols = ["n", "succeeded", "failed", "partially_succeeded", "canceled", "pass_rate"]
    if builds.empty:
        return pd.DataFrame(columns=[*by, *cols])
    rows = [{**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)), **pass_rate(g)}
            for key, g in builds.groupby(list(by), sort=True, dropna=False)]
    out = pd.DataFrame(rows)
    out["n"] = out["n"] - out["canceled"]
    return out.sort_values(["pass_rate", "n"], ascending=[True, False], kind="stable").reset_index(drop=True)


def branch_group(builds: pd.DataFrame) -> pd.Series:
    """SourceBranch, with every pull-request merge ref (refs/pull/N/merge) folded into "pull requests"."""
    branch = builds["SourceBranch"].fillna("")
    return branch.where(~branch.str.startswith("refs/pull/"), "pull requests")


def week_over_week(
    builds: pd.DataFrame, end: datetime, by: Sequence[str] = ("Definition",), time_column: str = "QueueTime"
) -> pd.DataFrame:
    """Pass rate in the last 7 days before *end* and the 7 days before that, per group, with n and the change
    (percentage points)."""
    end_ts = pd.Timestamp(end)
    this = builds[(builds[time_column] >= end_ts - timedelta(days=7)) & (builds[time_column] < end_ts)]
    prev = builds[(builds[time_column] >= end_ts - timedelta(days=14)) & (builds[time_column] < end_ts - timedelta(days=7))]
    a = pass_rate_by(this, by)[[*by, "n", "pass_rate"]].rename(columns={"n": "n_this_week", "pass_rate": "pass_rate_this_week"})
    b = pass_rate_by(prev, by)[[*by, "n", "pass_rate"]].rename(columns={"n": "n_last_week", "pass_rate": "pass_rate_last_week"})
    out = a.merge(b, on=list(by), how="outer")
    out[["n_this_week", "n_last_week"]] = out[["n_this_week", "n_last_week"]].fillna(0).astype(int)
    out["change_points"] = (out["pass_rate_this_week"] - out["pass_rate_last_week"]) * 100
    return out.sort_values(list(by)).reset_index(drop=True)


def duration_percentiles(builds: pd.DataFrame, by: Sequence[str] = ("Definition",), column: str = "DurationSeconds") -> pd.DataFrame:
    """p50/p90/p95 of *column* (seconds → minutes) over successful builds, per group, with n."""
    ok = builds[builds["Result"] == SUCCEEDED] if len(builds) else builds
    cols = [*by, "n", "p50_minutes", "p90_minutes", "p95_minutes"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    grouped = ok.groupby(list(by))[column]
    out = pd.DataFrame({
        "n": grouped.count(),
        "p50_minutes": grouped.quantile(0.5) / 60,
        "p90_minutes": grouped.quantile(0.9) / 60,
        "p95_minutes": grouped.quantile(0.95) / 60,
    }).reset_index()
    return out[cols].sort_values("p90_minutes", ascending=False).reset_index(drop=True)


def percentile_minutes(values: pd.Series, q: float) -> float:
    """The q-quantile of seconds, in minutes (NaN when empty)."""
    values = values.dropna()
    return float(values.quantile(q) / 60) if len(values) else float("nan")


def queue_time(builds: pd.DataFrame, by: Sequence[str] = ("Definition",)) -> pd.DataFrame:
    """Time from queued to started (QueueSeconds), p50 and p90 in minutes, per group, with n."""
    return duration_percentiles(
        builds.assign(Result=SUCCEEDED) if len(builds) else builds, by, column="QueueSeconds"
    ).drop(columns=["p95_minutes"])


def time_to_green(builds: pd.DataFrame, main_branches: Sequence[str]) -> pd.DataFrame:
    """Red streaks on main branches: one row per streak with first red, next green and hours between.

    Canceled builds are skipped (they say nothing about the branch's state); partiallySucceeded keeps a
    streak open (not green) but does not start one. `Hours` is NaN for a streak still red at the end.
    """
    cols = ["Organization", "Project", "Definition", "SourceBranch", "FirstRed", "FirstRedBuild", "Green",
            "GreenBuild", "RedBuilds", "Hours"]
    if builds.empty:
        return pd.DataFrame(columns=cols)
    main = builds[builds["SourceBranch"].isin(list(main_branches)) & (builds["Result"] != CANCELED)]
    rows = []
    for key, g in main.sort_values(["FinishTime", "BuildId"]).groupby(["Organization", "Project", "Definition", "SourceBranch"]):
        red: dict | None = None
        for b in g.itertuples(index=False):
            if b.Result == FAILED and red is None:
                red = {"FirstRed": b.FinishTime, "FirstRedBuild": b.BuildId, "RedBuilds": 1}
            elif red is not None and b.Result == SUCCEEDED:
                hours = (b.FinishTime - red["FirstRed"]).total_seconds() / 3600
                rows.append({**dict(zip(cols[:4], key, strict=True)), **red, "Green": b.FinishTime, "GreenBuild": b.BuildId, "Hours": hours})
                red = None
            elif red is not None:
                red["RedBuilds"] += 1
        if red is not None:
            rows.append({**dict(zip(cols[:4], key, strict=True)), **red, "Green": pd.NaT, "GreenBuild": None, "Hours": float("nan")})
    return pd.DataFrame(rows, columns=cols)


def median_time_to_green(streaks: pd.DataFrame) -> float:
    """Median hours of the red streaks that ended (NaN when none did)."""
    hours = streaks["Hours"].dropna() if len(streaks) else pd.Series(dtype=float)
    return float(hours.median()) if len(hours) else float("nan")


def retries(jobs: pd.DataFrame, builds: pd.DataFrame | None = None) -> dict[str, float]:
    """Retry rate and minutes wasted on job attempts that were followed by another attempt.

    *jobs*: Job records, every attempt (jobs_in_period.kql). A job is identified within a build by its
    Identifier (Name when empty). Builds with no job records count in the denominator when *builds* is given.
    """
    n_builds = builds["BuildId"].nunique() if builds is not None and len(builds) else (jobs["BuildId"].nunique() if len(jobs) else 0)
    if jobs.empty:
        return {"n": n_builds, "retried_builds": 0, "retry_rate": _rate(0, n_builds), "retried_jobs": 0, "minutes_wasted": 0.0}
    j = jobs.assign(JobKey=jobs["Identifier"].where(jobs["Identifier"].fillna("") != "", jobs["Name"]))
    keys = ["Organization", "Project", "BuildId", "JobKey"]
    last = j.groupby(keys)["Attempt"].transform("max")
    wasted = j[j["Attempt"] < last]
    retried = j[last > 1].drop_duplicates(keys)
    retried_builds = retried[["Organization", "Project", "BuildId"]].drop_duplicates()
    return {
        "n": n_builds,
        "retried_builds": len(retried_builds),
        "retry_rate": _rate(len(retried_builds), n_builds),
        "retried_jobs": len(retried),
        "minutes_wasted": float(wasted["DurationSeconds"].fillna(0).sum() / 60),
    }


def first_attempt_pass_rate(builds: pd.DataFrame) -> dict[str, float]:
    """PR builds that succeeded on their first attempt / (PR builds − canceled), with n."""
    pr = builds[builds["BuildKind"] == "PullRequest"] if len(builds) else builds
    pr = pr[pr["Result"] != CANCELED] if len(pr) else pr
    first = int(((pr["Result"] == SUCCEEDED) & (pr["Attempts"].fillna(1) <= 1)).sum()) if len(pr) else 0
    return {"n": len(pr), "first_attempt_passed": first, "first_attempt_pass_rate": _rate(first, len(pr))}


def failure_kinds(issues: pd.DataFrame) -> pd.DataFrame:
    """Error issues per FailureOrigin (infrastructure / code / …) and FailureCategory, with builds affected."""
    cols = ["FailureOrigin", "FailureCategory", "Issues", "Builds", "Share"]
    if issues.empty:
        return pd.DataFrame(columns=cols)
    i = issues.assign(
        FailureOrigin=issues["FailureOrigin"].fillna("").replace("", "unclassified"),
        FailureCategory=issues["FailureCategory"].fillna("").replace("", "unclassified"),
    )
    out = i.groupby(["FailureOrigin", "FailureCategory"]).agg(Issues=("BuildId", "size"), Builds=("BuildId", "nunique")).reset_index()
    out["Share"] = out["Issues"] / out["Issues"].sum()
    return out.sort_values(["Issues", "FailureOrigin", "FailureCategory"], ascending=[False, True, True]).reset_index(drop=True)[cols]


def origin_split(issues: pd.DataFrame) -> dict[str, int]:
    """Failed builds by the origin of their errors: a build counts once per origin it shows."""
    if issues.empty:
        return {}
    origin = issues["FailureOrigin"].fillna("").replace("", "unclassified")
    return {str(k): int(v) for k, v in issues.assign(O=origin).groupby("O")["BuildId"].nunique().sort_index().items()}


def top_failing_tasks(records: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """Failed Task records ranked by builds they failed (records_failed.kql rows)."""
    tasks = records[records["Type"] == "Task"] if len(records) else records
    if tasks.empty:
        return pd.DataFrame(columns=["Task", "Builds", "Failures", "Definitions"])
    name = tasks["TaskName"].fillna("").where(tasks["TaskName"].fillna("") != "", tasks["Name"])
    out = tasks.assign(Task=name).groupby("Task").agg(
        Builds=("BuildId", "nunique"), Failures=("BuildId", "size"), Definitions=("Definition", "nunique")
    ).reset_index()
    return out.sort_values(["Builds", "Failures", "Task"], ascending=[False, False, True]).head(n).reset_index(drop=True)


def daily_pass_rate(builds: pd.DataFrame) -> pd.DataFrame:
    """Pass rate per day (by queue time), with n, for the trend chart."""
    if builds.empty:
        return pd.DataFrame(columns=["Day", "n", "pass_rate"])
    days = builds.assign(Day=builds["QueueTime"].dt.floor("D"))
    rows = [{"Day": d, **pass_rate(g)} for d, g in days.groupby("Day")]
    out = pd.DataFrame(rows)
    out["n"] = out["n"] - out["canceled"]
    return out[["Day", "n", "pass_rate"]]


def summary(
    builds: pd.DataFrame, jobs: pd.DataFrame, main_branches: Sequence[str]
) -> dict[str, float]:
    """The five numbers of the executive summary, for one period."""
    pr = pass_rate(builds)
    ttg = time_to_green(builds, main_branches)
    ok = builds[builds["Result"] == SUCCEEDED]["DurationSeconds"] if len(builds) else pd.Series(dtype=float)
    return {
        "pass_rate": pr["pass_rate"],
        "builds": pr["n"] - pr["canceled"],
        "pr_first_attempt_pass_rate": first_attempt_pass_rate(builds)["first_attempt_pass_rate"],
        "p90_duration_minutes": percentile_minutes(ok, 0.9),
        "median_time_to_green_hours": median_time_to_green(ttg),
        # no builds: the period says nothing about retries (0 would read as "no minutes lost")
        "retry_minutes_wasted": retries(jobs, builds)["minutes_wasted"] if len(builds) else float("nan"),
    }


def change(current: float, previous: float) -> float:
    """current − previous (NaN when either is unknown)."""
    if current is None or previous is None or np.isnan(current) or np.isnan(previous):
        return float("nan")
    return float(current - previous)
