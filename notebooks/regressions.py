# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Regressions
#
# Changes in build time, memory, network and score series per definition and platform, as recorded in the
# Alerts table by `ci-telemetry alerts detect`. This report reads those rows and the series; it detects nothing.

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
from etl.analysis.alerts import list_alerts
from etl.analysis.monitors import load_monitors
from etl.reports import changes as C
from etl.reports import nbkit as R
from etl.reports import summary

ctx = R.context(config_path, period_days, start, end, organization, project, definitions, branch, period_reason)
R.show(R.period_line(ctx))
monitors = load_monitors(ctx.settings.path(ctx.settings.reports.monitors))
changes = summary.changes_frame(ctx.load("alerts_in_period"))
open_now = changes[changes["Status"] == "open"].reset_index(drop=True) if len(changes) else changes
open_before = C.open_elsewhere(list_alerts(ctx.warehouse, "open"), changes)
# The series over this period and the previous one, so a change early in the period has its baseline charted.
by_key = C.series_by_key(ctx, monitors)

# %% [markdown]
# ## Executive summary

# %%
regression_cards = summary.regression_cards(changes, open_before, len(by_key), len(monitors.monitors))
R.show(R.cards(regression_cards), summary=regression_cards)

# %% [markdown]
# ## Changes
#
# Every change of the period in the Alerts table, whatever its status: the builds and commits either side and
# the medians before and after. "Regression" is used only for a metric whose direction is declared in
# monitors.yaml, on a change that cleared the detector and its noise test.

# %%
# every row is shown (no cut), so the table counts what the cards count
R.show(R.table(changes[C.TABLE_COLUMNS] if len(changes) else changes, C.FORMATS, max_rows=max(1, len(changes)),
               caption="Changes in this period", table_id="changes", row_id="AlertId"))

# %% [markdown]
# ## Open alerts
#
# The open alerts of the period, each charted with its change (dashed line: first build after the change;
# grey lines: the medians before and after). Resolve one with `ci-telemetry alerts resolve`.

# %%
R.show(R.table(open_now[C.TABLE_COLUMNS] if len(open_now) else open_now, C.FORMATS, max_rows=max(1, len(open_now)),
               caption="Open alerts in this period", table_id="open-alerts", row_id="AlertId"))
for row in open_now.itertuples(index=False):
    R.show(C.chart(row, by_key))

# %% [markdown]
# ## Distribution-valued probes
#
# Changes found by the `technique: cdf` monitors of monitors.yaml (by default the memory samples, `memory_mb`):
# a day whose distribution of samples moved away from the days before (squared CDF difference).

# %%
probes = changes[changes["Technique"].isin(C.DISTRIBUTION)] if len(changes) else changes
R.show(R.table(probes[C.TABLE_COLUMNS] if len(probes) else probes, C.FORMATS,
               caption="Days in this period whose sample distribution changed", table_id="distribution-changes"))

# %% [markdown]
# ## Glossary

# %%
R.show(R.glossary({
    "change": "a row of the Alerts table whose change happened in this period (ChangeAt), written by "
              "`ci-telemetry alerts detect`; this report reads those rows and does not detect anything itself.",
    "regression / improvement": "a change that moves a metric the wrong / right way for its declared direction "
                                "(lower_is_better in monitors.yaml) and cleared the detector and its noise test; "
                                "any other change is called a change.",
    "series": "one metric (MetricSamples.Metric, or build_duration_seconds from TimelineBuilds) for one organization, "
              "project, definition and platform; one point per build (median of its samples), in time order.",
    "first build after": "the first build whose value is on the new level.",
    "before / after": "medians of the points either side of the change.",
    "change %": "(after − before) / before × 100.",
    "score": "|after − before| / noise scale of the series (for cdf changes: the CDF difference).",
    "open alert": "an alert not resolved yet; `alerts resolve <id> --resolution FIXED|WONTFIX|INVALID|WORKSFORME`.",
    "alert id": "hash of (organization, metric, series, first build after the change): re-runs find the same alert.",
}))
ctx.close()
