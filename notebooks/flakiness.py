# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Flaky tests
#
# Tests that pass and fail on the same code, what they cost, and tests that are simply broken.

# %% tags=["parameters"]
# Parameters (papermill injects the values of a run below this cell).
period_days = 28
start = ""  # ISO date/time; overrides period_days when set
end = ""  # ISO date/time; default: next midnight UTC
organization = ""
project = ""
definitions = []  # definition names ("path\\name"); empty: all
branch = ""
config_path = ""  # default: config/default.yaml
period_reason = ""  # why this period (render.py says: the config's reports.days or --days)

# %%
import plotly.graph_objects as go

from etl.analysis import flaky
from etl.reports import flakiness as C
from etl.reports import nbkit as R
from etl.reports import summary

ctx = R.context(config_path, period_days, start, end, organization, project, definitions, branch, period_reason)
R.show(R.period_line(ctx))
rs = ctx.settings.reports
thresholds = flaky.FlakyThresholds(min_results=rs.flaky_min_results, min_commits=rs.flaky_min_commits,
                                   min_rate=rs.flaky_min_rate)
builds = ctx.load("builds_in_period")
# Flaky jobs: the builds that retried a job, and per job how many builds ran it (counted in the store).
jobs = ctx.load("retried_jobs_in_period")
job_builds = ctx.load("job_builds_in_period")
stats, failures, outages = C.flaky_inputs(ctx, thresholds)
stats_prev, _, _ = C.flaky_inputs(ctx, thresholds, previous=True)
flaky_now, broken_now = flaky.flaky_tests(stats), flaky.broken_tests(stats)
new = flaky.new_flaky(stats, stats_prev)
hurt = flaky.impact(failures, builds, flaky_now["TestName"].tolist())

# %% [markdown]
# ## Executive summary

# %%
flaky_cards = summary.flaky_cards(stats, stats_prev, new, hurt)
R.show(R.cards(flaky_cards), summary=flaky_cards)

# %% [markdown]
# ## Flaky tests, ranked by flip rate
#
# Flip rate = commits on which the test both passed and failed (or passed on rerun) / commits it ran on.

# %%
top = flaky_now.head(20)
fig = go.Figure(go.Bar(x=top["FlipRate"] * 100, y=top["TestName"], orientation="h", customdata=top["Commits"],
                       hovertemplate="%{y}: %{x:.1f}% of %{customdata} commits<extra></extra>"))
fig.update_layout(title="Flip rate of the flakiest tests (%)", yaxis_autorange="reversed")
R.show(R.figure(fig, height=max(300, 24 * len(top) + 120), title="Flip rate of the flakiest tests (%)"))
ranked = flaky_now.merge(hurt, on="TestName", how="left")
R.show(R.table(ranked[["TestName", "FlipRate", "FlakyCommits", "Commits", "Results", "Failed", "PassedOnRerun",
                       "FailedBuilds", "FailedPRs", "MachineMinutes"]],
               {"FlipRate": R.fmt_pct}, max_rows=50, caption="Flaky tests", table_id="flaky-tests"))

# %% [markdown]
# ## New flaky tests this period

# %%
R.show(R.table(new[["TestName", "FlipRate", "FlakyCommits", "Commits", "FirstSeen"]] if len(new) else new,
               {"FlipRate": R.fmt_pct}, caption="Flaky now, not in the previous period", table_id="new-flaky-tests"))

# %% [markdown]
# ## Open flaky-test alerts
#
# The flaky-test alerts (`Kind = flaky`) that `ci-telemetry alerts detect` recorded for this period and
# nobody resolved yet; resolve one with `ci-telemetry alerts resolve`.

# %%
flaky_alerts = ctx.load("alerts_in_period", status="open", alertKind="flaky")
R.show(R.table(flaky_alerts[["Metric", "Series", "ChangeAt", "Score", "AlertId"]] if len(flaky_alerts) else flaky_alerts,
               caption="Open flaky-test alerts", table_id="flaky-alerts", row_id="AlertId"))

# %% [markdown]
# ## Broken tests
#
# Failing consistently: every result on the test's last commits failed, and no rerun passed. A fix is
# needed, not a retry.

# %%
R.show(R.table(broken_now[["TestName", "FailRate", "Failed", "Results", "Commits", "FirstSeen", "LastSeen"]]
               if len(broken_now) else broken_now, {"FailRate": R.fmt_pct}, caption="Broken tests",
               table_id="broken-tests"))

# %% [markdown]
# ## Flaky jobs
#
# Jobs that failed and then succeeded when the job was retried in the same build.

# %%
R.show(R.table(flaky.flaky_jobs(jobs, job_builds), {"Rate": R.fmt_pct}, caption="Flaky jobs (n = builds that ran the job)"))

# %% [markdown]
# ## Excluded outage runs
#
# Test runs in which most tests failed at once say nothing about any one test; they are left out above.

# %%
R.show(R.table(outages, caption="Outage runs excluded"))

# %% [markdown]
# ## Glossary

# %%
R.show(R.glossary({
    "flaky commit": "a commit (SourceVersion) on which the test both passed and failed, or a result that passed "
                    "on rerun (PassedOnRerun).",
    "flip rate": "flaky commits / commits the test ran on.",
    "flaky test": f"results ≥ flaky_min_results, flaky commits ≥ flaky_min_commits and flip rate ≥ flaky_min_rate "
                  f"(settings.reports: {rs.flaky_min_results}, {rs.flaky_min_commits}, {rs.flaky_min_rate:.0%}).",
    "broken test": f"failing consistently: on each of the last {thresholds.broken_min_failures} commits the test ran "
                   "on, every result failed and none passed on rerun.",
    "outage run": f"a test run with ≥ {thresholds.outage_min_results} results of which more than "
                  f"{thresholds.outage_fraction:.0%} failed; excluded before any test is judged.",
    "impact": "failed builds in which the test failed without passing on rerun; PRs among them; the machine minutes "
              "(build duration) of those builds.",
    "new flaky test": "flaky in this period and not in the previous period of the same length.",
    "flaky job": "a Job record that failed at one attempt and succeeded at a later attempt of the same build; rate "
                 "over builds that ran the job.",
}))
ctx.close()
