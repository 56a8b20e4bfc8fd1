"""Generates `notebooks/*.ipynb` (the report notebooks) with nbformat, so their cells stay reviewable as code.

Run `python -m etl.reports.notebooks` after editing a cell here; a test checks the files match. Cells are
thin: they call `etl.analysis` and `etl.reports.nbkit`, which hold the logic and are unit-tested.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from etl.config import PROJECT_ROOT

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"

PARAMETERS = '''# Parameters (papermill injects the values of a run below this cell).
period_days = 28
start = ""          # ISO date/time; overrides period_days when set
end = ""            # ISO date/time; default: next midnight UTC
organization = ""
project = ""
definitions = []    # definition names ("path\\\\name"); empty: all
branch = ""
config_path = ""    # default: config/default.yaml
'''

SETUP = '''from etl.reports import nbkit as R
ctx = R.context(config_path, period_days, start, end, organization, project, definitions, branch)
R.show(R.period_line(ctx))'''


def _nb(title: str, intro: str, cells: list[tuple[str, str]], glossary: str) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "title": title,
    }
    nb.cells.append(new_markdown_cell(f"# {title}\n\n{intro}"))
    nb.cells.append(new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}))
    nb.cells.append(new_code_cell(SETUP))
    for kind, source in cells:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    nb.cells.append(new_markdown_cell("## Glossary"))
    nb.cells.append(new_code_cell(glossary))
    nb.cells.append(new_code_cell("ctx.close()"))
    slug = title.lower().replace(" ", "-")
    for i, cell in enumerate(nb.cells):
        cell.id = f"{slug}-{i:02d}"  # stable ids: regenerating gives the same file
    return nb


def ci_health() -> nbformat.NotebookNode:
    cells = [
        ("code", '''import plotly.graph_objects as go
from etl.analysis import health
main_branches = ctx.settings.reports.main_branches
builds = ctx.load("builds_in_period")
builds_prev = ctx.load("builds_in_period", previous=True)
jobs = ctx.load("jobs_in_period")
jobs_prev = ctx.load("jobs_in_period", previous=True)
issues = ctx.load("issues_in_period")
failed_records = ctx.load("records_failed")'''),
        ("md", "## Executive summary\n\nFive numbers, each with its change since the previous period of the same length."),
        ("code", '''now, before = health.summary(builds, jobs, main_branches), health.summary(builds_prev, jobs_prev, main_branches)
R.show(R.cards([
    ("Build pass rate (n=%d)" % now["builds"], R.fmt_pct(now["pass_rate"]), *R.delta(now["pass_rate"], before["pass_rate"], True, " pts", 100)),
    ("PR first-attempt pass rate", R.fmt_pct(now["pr_first_attempt_pass_rate"]), *R.delta(now["pr_first_attempt_pass_rate"], before["pr_first_attempt_pass_rate"], True, " pts", 100)),
    ("p90 duration, successful builds", R.fmt_num(now["p90_duration_minutes"]) + " min", *R.delta(now["p90_duration_minutes"], before["p90_duration_minutes"], False, " min")),
    ("Median time to green (main)", R.fmt_num(now["median_time_to_green_hours"]) + " h", *R.delta(now["median_time_to_green_hours"], before["median_time_to_green_hours"], False, " h")),
    ("Machine minutes lost to job retries", R.fmt_num(now["retry_minutes_wasted"], 0), *R.delta(now["retry_minutes_wasted"], before["retry_minutes_wasted"], False, " min")),
]))'''),
        ("md", "## Pass rate\n\nDaily pass rate (succeeded / (all − canceled)) and, per definition and branch, the counts behind it."),
        ("code", '''daily = health.daily_pass_rate(builds)
fig = go.Figure(go.Scatter(x=daily["Day"], y=daily["pass_rate"] * 100, mode="lines+markers", customdata=daily["n"],
                           hovertemplate="%{x|%Y-%m-%d}: %{y:.1f}% (n=%{customdata})<extra></extra>"))
fig.update_layout(title="Daily build pass rate (%)", yaxis_range=[0, 100])
R.show(R.figure(fig))
R.show(R.table(health.pass_rate_by(builds.assign(Branch=health.branch_group(builds)), ["Definition", "Branch"]), {"pass_rate": R.fmt_pct},
               caption="Pass rate per definition and branch, lowest first (PR merge refs grouped; partiallySucceeded shown apart; n excludes canceled)"))
R.show(R.table(health.week_over_week(builds, ctx.period.end, ["Definition"]),
               {"pass_rate_this_week": R.fmt_pct, "pass_rate_last_week": R.fmt_pct, "change_points": lambda v: R.fmt_num(v) + " pts"},
               caption="Week over week, per definition"))'''),
        ("md", "## What fails: infrastructure or code\n\nError issues by the classifier's origin and category."),
        ("code", '''kinds = health.failure_kinds(issues)
split = health.origin_split(issues)
fig = go.Figure(go.Bar(x=list(split.keys()), y=list(split.values())))
fig.update_layout(title="Builds with errors, by failure origin")
R.show(R.figure(fig, height=320))
R.show(R.table(kinds, {"Share": R.fmt_pct}, caption="Errors by origin and category"))'''),
        ("md", "## Durations and queue time"),
        ("code", '''R.show(R.table(health.duration_percentiles(builds, ["Definition"]), caption="Duration of successful builds (minutes)"))
R.show(R.table(health.queue_time(builds, ["Definition"]), caption="Queue time, queued → started (minutes)"))
ok = builds[builds["Result"] == "succeeded"]
fig = go.Figure([go.Box(y=g["DurationSeconds"] / 60, name=str(name)) for name, g in ok.groupby("Definition")])
fig.update_layout(title="Duration of successful builds per definition (minutes)", showlegend=False)
R.show(R.figure(fig))'''),
        ("md", "## Time to green on main branches\n\nFrom the first red (failed) build to the next succeeded build of the same definition and branch."),
        ("code", '''streaks = health.time_to_green(builds, main_branches)
R.show("<p>Median time to green: <b>%s h</b> over %d closed red streaks; %d still red.</p>" % (
    R.fmt_num(health.median_time_to_green(streaks)), int(streaks["Hours"].notna().sum()), int(streaks["Hours"].isna().sum())))
R.show(R.table(streaks.sort_values("Hours", ascending=False), caption="Red streaks, longest first"))'''),
        ("md", "## Retries and first-attempt pass rate"),
        ("code", '''r = health.retries(jobs, builds)
fa = health.first_attempt_pass_rate(builds)
R.show("<p>Builds with a retried job: <b>%s</b> (%d of n=%d); jobs retried: %d; machine minutes spent on attempts that were retried: <b>%s</b>.</p>"
       % (R.fmt_pct(r["retry_rate"]), r["retried_builds"], r["n"], r["retried_jobs"], R.fmt_num(r["minutes_wasted"], 0)))
R.show("<p>Pull-request builds that passed on their first attempt: <b>%s</b> (%d of n=%d).</p>"
       % (R.fmt_pct(fa["first_attempt_pass_rate"]), fa["first_attempt_passed"], fa["n"]))'''),
        ("md", "## Top failing tasks and failure signatures"),
        ("code", '''R.show(R.table(ctx.load("top_failing_tasks"), max_rows=15, caption="Tasks that failed the most builds"))
signatures = ctx.load("top_signatures")
R.show(R.table(signatures[["Signature", "Builds", "Occurrences", "FailureOrigin", "FailureCategory", "Message"]]
               if len(signatures) else signatures, max_rows=15, caption="Most frequent error signatures (latest example message)"))'''),
    ]
    glossary = '''R.show(R.glossary({
    "pass rate": "succeeded / (all builds − canceled); partiallySucceeded is in the denominator and shown apart; n = builds − canceled.",
    "p50 / p90 / p95 duration": "percentiles of DurationSeconds over succeeded builds only (failed builds stop early).",
    "queue time": "StartTime − QueueTime of each build (QueueSeconds).",
    "time to green": "FinishTime of the next succeeded build − FinishTime of the first failed build after a green one, per definition and main branch (settings.reports.main_branches); canceled builds skipped.",
    "retry rate": "builds with a Job record at Attempt > 1 / builds.",
    "minutes lost to retries": "sum of DurationSeconds of every job attempt that was followed by another attempt of the same job.",
    "PR first-attempt pass rate": "PR builds that succeeded with Attempts = 1 / (PR builds − canceled).",
    "failure origin": "infrastructure vs code, from the failure classifier (TimelineIssues.FailureOrigin); 'unclassified' when no rule matched.",
    "week over week": "the last 7 days of the period against the 7 days before; change in percentage points.",
    "period": "builds are selected by QueueTime in [start, end).",
}))'''
    return _nb("CI health", "Pass rate, failure kinds, durations, time to green and retries.", cells, glossary)


def flakiness() -> nbformat.NotebookNode:
    cells = [
        ("code", '''import plotly.graph_objects as go
from etl.analysis import flaky
rs = ctx.settings.reports
thresholds = flaky.FlakyThresholds(min_results=rs.flaky_min_results, min_commits=rs.flaky_min_commits, min_rate=rs.flaky_min_rate)
results = ctx.load("test_results_in_period")
results_prev = ctx.load("test_results_in_period", previous=True)
builds = ctx.load("builds_in_period")
jobs = ctx.load("jobs_in_period")
stats = flaky.test_stats(results, thresholds)
stats_prev = flaky.test_stats(results_prev, thresholds)
flaky_now, broken_now = flaky.flaky_tests(stats), flaky.broken_tests(stats)
new = flaky.new_flaky(stats, stats_prev)
hurt = flaky.impact(results, builds, flaky_now["TestName"].tolist())
_, outages = flaky.exclude_outages(results, thresholds)'''),
        ("md", "## Executive summary"),
        ("code", '''def count(frame, kind):
    return int((frame["Kind"] == kind).sum()) if len(frame) else 0
R.show(R.cards([
    ("Flaky tests (of %d tests)" % len(stats), str(len(flaky_now)), *R.delta(len(flaky_now), count(stats_prev, "flaky"), False)),
    ("New flaky tests this period", str(len(new)), "not flaky in the previous period", "bad" if len(new) else "good"),
    ("Broken tests (failing consistently)", str(len(broken_now)), *R.delta(len(broken_now), count(stats_prev, "broken"), False)),
    ("Failed builds with a flaky test failing", str(int(hurt["FailedBuilds"].sum())), "%d PRs" % int(hurt["FailedPRs"].sum()), "flat"),
    ("Machine minutes of those builds", R.fmt_num(float(hurt["MachineMinutes"].sum()), 0), "", "flat"),
]))'''),
        ("md", "## Flaky tests, ranked by flip rate\n\nFlip rate = commits on which the test both passed and failed (or passed on rerun) / commits it ran on."),
        ("code", '''top = flaky_now.head(20)
fig = go.Figure(go.Bar(x=top["FlipRate"] * 100, y=top["TestName"], orientation="h", customdata=top["Commits"],
                       hovertemplate="%{y}: %{x:.1f}% of %{customdata} commits<extra></extra>"))
fig.update_layout(title="Flip rate of the flakiest tests (%)", yaxis_autorange="reversed")
R.show(R.figure(fig, height=max(300, 24 * len(top) + 120)))
ranked = flaky_now.merge(hurt, on="TestName", how="left")
R.show(R.table(ranked[["TestName", "FlipRate", "FlakyCommits", "Commits", "Results", "Failed", "PassedOnRerun", "FailedBuilds", "FailedPRs", "MachineMinutes"]],
               {"FlipRate": R.fmt_pct}, max_rows=50, caption="Flaky tests"))'''),
        ("md", "## New flaky tests this period"),
        ("code", '''R.show(R.table(new[["TestName", "FlipRate", "FlakyCommits", "Commits", "FirstSeen"]] if len(new) else new, {"FlipRate": R.fmt_pct}, caption="Flaky now, not in the previous period"))'''),
        ("md", "## Broken tests\n\nFailing every time on the same code: a fix is needed, not a retry."),
        ("code", '''R.show(R.table(broken_now[["TestName", "FailRate", "Failed", "Results", "Commits", "LastSeen"]] if len(broken_now) else broken_now, {"FailRate": R.fmt_pct}, caption="Broken tests"))'''),
        ("md", "## Flaky jobs\n\nJobs that failed and then succeeded when the job was retried in the same build."),
        ("code", '''R.show(R.table(flaky.flaky_jobs(jobs), {"Rate": R.fmt_pct}, caption="Flaky jobs (n = builds that ran the job)"))'''),
        ("md", "## Excluded outage runs\n\nTest runs in which most tests failed at once say nothing about any one test; they are left out above."),
        ("code", '''R.show(R.table(outages, caption="Outage runs excluded"))'''),
    ]
    glossary = '''R.show(R.glossary({
    "flaky commit": "a commit (SourceVersion) on which the test both passed and failed, or a result that passed on rerun (PassedOnRerun).",
    "flip rate": "flaky commits / commits the test ran on.",
    "flaky test": "results ≥ flaky_min_results, flaky commits ≥ flaky_min_commits and flip rate ≥ flaky_min_rate (settings.reports: %d, %d, %.0f%%)." % (rs.flaky_min_results, rs.flaky_min_commits, rs.flaky_min_rate * 100),
    "broken test": "failed at least %d times on commits where it never passed (every build and retry of that code failed), on at least as many commits as it flipped on." % thresholds.broken_min_failures,
    "outage run": "a test run with ≥ %d results of which more than %d%% failed; excluded before any test is judged." % (thresholds.outage_min_results, thresholds.outage_fraction * 100),
    "impact": "failed builds in which the test failed without passing on rerun; PRs among them; the machine minutes (build duration) of those builds.",
    "new flaky test": "flaky in this period and not in the previous period of the same length.",
    "flaky job": "a Job record that failed at one attempt and succeeded at a later attempt of the same build; rate over builds that ran the job.",
}))'''
    return _nb("Flaky tests", "Tests that pass and fail on the same code, what they cost, and tests that are simply broken.", cells, glossary)


def regressions() -> nbformat.NotebookNode:
    cells = [
        ("code", '''import pandas as pd
import plotly.graph_objects as go
from etl.analysis import detectors, regressions
from etl.analysis.alerts import list_alerts
from etl.analysis.monitors import load_monitors
monitors = load_monitors(ctx.settings.path(ctx.settings.reports.monitors))
# Series cover the previous period too, so a change early in this period has a baseline before it.
frames = [ctx.load("metric_series", previous=True), ctx.load("metric_series"),
          regressions.builds_as_samples(ctx.load("builds_in_period", previous=True)),
          regressions.builds_as_samples(ctx.load("builds_in_period"))]
samples = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else frames[1]
found = regressions.detect_regressions(samples, monitors)
if len(found):
    found = found[found["ChangeAt"] >= pd.Timestamp(ctx.period.start)].reset_index(drop=True)
all_series = list(regressions.series(samples, sorted({m for m in samples["Metric"].unique() if monitors.get(m)}) if len(samples) else []))
stored = list_alerts(ctx.warehouse, "open")'''),
        ("md", "## Executive summary"),
        ("code", '''def n_dir(d):
    return int((found["Direction"] == d).sum()) if len(found) else 0
R.show(R.cards([
    ("Series watched", str(len(all_series)), "%d monitors in monitors.yaml" % len(monitors.monitors), "flat"),
    ("Changes found this period", str(len(found)), "", "flat"),
    ("Regressions", str(n_dir("regression")), "", "bad" if n_dir("regression") else "good"),
    ("Improvements", str(n_dir("improvement")), "", "good" if n_dir("improvement") else "flat"),
    ("Open alerts in the store", str(len(stored)), "resolve with `ci-telemetry alerts resolve`", "bad" if len(stored) else "good"),
]))'''),
        ("md", "## Changes found\n\nOne row per change point: the builds and commits either side, medians before and after."),
        ("code", '''cols = ["Direction", "Metric", "Series", "BuildBefore", "BuildAfter", "CommitBefore", "CommitAfter", "Before", "After", "ChangePercent", "Technique", "mode", "AlertId"]
R.show(R.table(found.sort_values("ChangePercent", key=abs, ascending=False)[cols] if len(found) else found,
               {"ChangePercent": lambda v: "%+.1f%%" % v, "CommitBefore": lambda v: str(v)[:10], "CommitAfter": lambda v: str(v)[:10]},
               max_rows=40, caption="Changes (mode alert: an Alerts row; monitor: chart only)"))'''),
        ("code", '''by_key = {(s.metric, s.name): s for s in all_series}
for _, row in (found.sort_values("ChangePercent", key=abs, ascending=False).head(6).iterrows() if len(found) else []):
    s = by_key[(row["Metric"], row["Series"])]
    fig = go.Figure(go.Scatter(x=s.points["BuildId"].astype(str), y=s.points["Value"], mode="lines+markers", name=row["Metric"]))
    fig.add_vline(x=s.points.index[s.points["BuildId"] == row["BuildAfter"]][0] - 0.5, line_dash="dash", line_color="red")
    fig.update_layout(title="%s — %s: %+.1f%% at build %d (%s)" % (row["Metric"], row["Series"], row["ChangePercent"], row["BuildAfter"], row["Direction"]),
                      xaxis_title="build", xaxis_type="category")
    R.show(R.figure(fig, height=320))'''),
        ("md", "## Distribution-valued probes\n\nMetrics watched with `technique: cdf` in monitors.yaml (by default the memory samples, `memory_mb`), per definition and platform: a change when a day's distribution moves away from the days before (squared CDF difference)."),
        ("code", '''# The distribution monitors of monitors.yaml (technique cdf) are part of `found`; shown here on their own.
changed_days = found[found["Technique"].isin(list(detectors.DISTRIBUTION_TECHNIQUES))] if len(found) else found
cols = ["Project", "Definition", "Platform", "Metric", "ChangeAt", "Before", "After", "ChangePercent", "Score"]
R.show(R.table(changed_days[cols] if len(changed_days) else changed_days,
               {"ChangePercent": lambda v: "%+.1f%%" % v}, caption="Days in this period whose sample distribution changed"))'''),
        ("md", "## Open alerts\n\nAlerts recorded by `ci-telemetry demo` (or the scheduled detection), not resolved yet."),
        ("code", '''R.show(R.table(stored[["AlertId", "Direction", "Metric", "Series", "BuildAfter", "ChangePercent", "DetectedAt"]] if len(stored) else stored,
               {"ChangePercent": lambda v: "%+.1f%%" % v}, max_rows=50, caption="Open alerts"))'''),
    ]
    glossary = '''R.show(R.glossary({
    "series": "over this period and the previous one (changes reported when they fall in this period): one metric (MetricSamples.Metric, or build_duration_seconds from TimelineBuilds) for one organization, project, definition and platform; one point per build (median of its samples), in time order.",
    "change point": "the first build after which the series' level differs; found by the monitor's technique (config/monitors.yaml).",
    "pelt": "offline change points (ruptures PELT; l1 cost by default, robust to single slow builds) on the series scaled by its noise (MAD of first differences); penalty × log(n); changes below min_change_percent dropped.",
    "ttest": "Welch t-test of the back window against the fore window at each build; local maxima of |t| above t_threshold.",
    "baseline": "consecutive values all differing from the median of the previous window by at least threshold_percent.",
    "before / after": "medians of up to 20 points either side of the change (within the neighbouring segments).",
    "change %": "(after − before) / before × 100; regression when it moves the wrong way for the metric (lower_is_better).",
    "score": "|after − before| / noise scale of the series.",
    "CDF difference": "mean over the pooled support of (F_day − F_before)², F the empirical CDFs; a change above 0.03, confirmed by the next day.",
    "alert id": "hash of (organization, metric, series, first build after the change): re-runs find the same alert and add nothing.",
}))'''
    return _nb("Regressions", "Build time, memory, network and score series per definition and platform, and their change points.", cells, glossary)


NOTEBOOKS = {"ci_health": ci_health, "flakiness": flakiness, "regressions": regressions}


def write_notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """(Re)write every report notebook into *directory*; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, build in NOTEBOOKS.items():
        path = directory / f"{name}.ipynb"
        nb = build()
        nbformat.validate(nb)
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_notebooks(Path(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOK_DIR):
        print(p)
