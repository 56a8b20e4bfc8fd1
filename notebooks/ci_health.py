# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # CI health
#
# Pass rate, failure kinds, durations, time to green and retries.

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

from etl.analysis import health
from etl.reports import nbkit as R
from etl.reports import summary, systems, usage

ctx = R.context(config_path, period_days, start, end, organization, project, definitions, branch, period_reason)
R.show(R.period_line(ctx))
main_branches = ctx.settings.reports.main_branches
builds = ctx.load("builds_in_period")
builds_prev = ctx.load("builds_in_period", previous=True)
# Retries need only the builds that retried a job: a few percent of every job record of the period.
jobs = ctx.load("retried_jobs_in_period")
jobs_prev = ctx.load("retried_jobs_in_period", previous=True)
issues = ctx.load("issues_in_period")

# %% [markdown]
# ## Executive summary
#
# Five numbers, each with its change since the previous period of the same length.

# %%
health_cards = summary.health_cards(
    health.summary(builds, jobs, main_branches), health.summary(builds_prev, jobs_prev, main_branches)
)
R.show(R.cards(health_cards), summary=health_cards)
R.show(R.table(systems.summary_by_system(builds, jobs, main_branches),
               {"Pass rate": R.fmt_pct, "PR first-attempt pass rate": R.fmt_pct, "p90 duration (min)": R.fmt_num,
                "Median time to green (h)": R.fmt_num, "Retry minutes lost": R.fmt_num},
               caption="The same numbers per CI system", table_id="summary-by-system"))

# %% [markdown]
# ## Pass rate
#
# Daily pass rate (succeeded / (all − canceled)) and, per definition and branch, the counts behind it.

# %%
daily = health.daily_pass_rate(builds)
fig = go.Figure(go.Scatter(x=daily["Day"], y=daily["pass_rate"] * 100, mode="lines+markers", customdata=daily["n"],
                           hovertemplate="%{x|%Y-%m-%d}: %{y:.1f}% (n=%{customdata})<extra></extra>"))
fig.update_layout(title="Daily build pass rate (%)", yaxis_range=[0, 100])
R.show(R.figure(fig, title="Daily build pass rate (%)"))
by_branch = health.pass_rate_by(builds.assign(Branch=health.branch_group(builds)), ["Definition", "Branch"])
R.show(R.table(by_branch, {"pass_rate": R.fmt_pct}, caption="Pass rate per definition and branch, lowest first "
               "(PR merge refs grouped; partiallySucceeded shown apart; n excludes canceled)"))
R.show(R.table(health.week_over_week(builds, ctx.period.end, ["Definition"]),
               {"pass_rate_this_week": R.fmt_pct, "pass_rate_last_week": R.fmt_pct,
                "change_points": lambda v: R.fmt_num(v, 1)},
               caption="Week over week, per definition: the last 7 days of the period against the 7 days before"))

# %% [markdown]
# ## What fails: infrastructure or code
#
# Error issues by the classifier's origin and category.

# %%
split = health.origin_split(issues)
fig = go.Figure(go.Bar(x=list(split.keys()), y=list(split.values())))
fig.update_layout(title="Builds with errors, by failure origin")
R.show(R.figure(fig, height=320, title="Builds with errors, by failure origin"))
R.show(R.table(health.failure_kinds(issues), {"Share": R.fmt_pct}, caption="Errors by origin and category"))

# %% [markdown]
# ## Durations and queue time

# %%
R.show(R.table(health.duration_percentiles(builds, ["Definition"]), caption="Duration of successful builds (minutes)"))
R.show(R.table(health.queue_time(builds, ["Definition"]), caption="Queue time, queued → started (minutes)"))
ok = builds[builds["Result"] == "succeeded"] if len(builds) else builds
fig = go.Figure([go.Box(y=g["DurationSeconds"] / 60, name=str(name)) for name, g in ok.groupby("Definition")])
fig.update_layout(title="Duration of successful builds per definition (minutes)", showlegend=False)
R.show(R.figure(fig, title="Duration of successful builds per definition (minutes)"))

# %% [markdown]
# ## Time to green on main branches
#
# From the first red (failed) build to the next succeeded build of the same definition and branch.

# %%
streaks = health.time_to_green(builds, main_branches)
R.show(R.sentence("Median time to green: ", R.fmt_num(health.median_time_to_green(streaks)) + " h",
                  f" over {int(streaks['Hours'].notna().sum())} closed red streaks; "
                  f"{int(streaks['Hours'].isna().sum())} still red."))
R.show(R.table(streaks.sort_values("Hours", ascending=False), caption="Red streaks, longest first"))

# %% [markdown]
# ## Retries and first-attempt pass rate

# %%
r = health.retries(jobs, builds)
fa = health.first_attempt_pass_rate(builds)
R.show(R.sentence("Builds with a retried job: ", R.fmt_pct(r["retry_rate"]),
                  f" ({r['retried_builds']} of n={r['n']}); jobs retried: {r['retried_jobs']}; "
                  "machine minutes spent on attempts that were retried: ", R.fmt_num(r["minutes_wasted"], 0), "."))
R.show(R.sentence("Pull-request builds that passed on their first attempt: ", R.fmt_pct(fa["first_attempt_pass_rate"]),
                  f" ({fa['first_attempt_passed']} of n={fa['n']})."))

# %% [markdown]
# ## Top failing tasks and failure signatures

# %%
R.show(R.table(ctx.load("top_failing_tasks"), max_rows=15, caption="Tasks that failed the most builds"))
signatures = ctx.load("top_signatures")
columns = ["Signature", "Builds", "Occurrences", "FailureOrigin", "FailureCategory", "Message"]
R.show(R.table(signatures[columns] if len(signatures) else signatures, max_rows=15,
               caption="Most frequent error signatures (latest example message)"))

# %% [markdown]
# ## Pipeline usage
#
# Which steps pipelines run, per CI system: the most used, how many are inline scripts, and those pinned to a
# version its publisher deprecated or to a branch.

# %%
R.show(usage.report_section(ctx))

# %% [markdown]
# ## Glossary

# %%
R.show(R.glossary({
    "pass rate": "succeeded / (all builds − canceled); partiallySucceeded is in the denominator and shown apart; "
                 "n = builds − canceled.",
    "p50 / p90 / p95 duration": "percentiles of DurationSeconds over succeeded builds only (failed builds stop early).",
    "queue time": "StartTime − QueueTime of each build (QueueSeconds).",
    "time to green": "FinishTime of the next succeeded build − FinishTime of the first failed build after a green "
                     "one, per definition and main branch (settings.reports.main_branches); canceled builds skipped.",
    "retry rate": "builds with a Job record at Attempt > 1 / builds.",
    "minutes lost to retries": "sum of DurationSeconds of every job attempt that was followed by another attempt "
                               "of the same job.",
    "PR first-attempt pass rate": "PR builds that succeeded with Attempts = 1 / (PR builds − canceled).",
    "failure origin": "infrastructure vs code, from the failure classifier (TimelineIssues.FailureOrigin); "
                      "'unclassified' when no rule matched.",
    "week over week": "the last 7 days of the period against the 7 days before; change in percentage points.",
    "period": "builds are selected by QueueTime in [start, end).",
}))
ctx.close()
