"""CI systems side by side: the executive summary's numbers per TimelineBuilds.System."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from etl.analysis import health
from etl.reports.usage import SYSTEM_LABELS

COLUMNS = ["CI system", "Builds (n)", "Pass rate", "PR first-attempt pass rate", "p90 duration (min)",
           "Median time to green (h)", "Retry minutes lost"]


def summary_by_system(builds: pd.DataFrame, jobs: pd.DataFrame, main_branches: Sequence[str]) -> pd.DataFrame:
    """One row per CI system of the period's builds: the five summary numbers, computed on that system's builds
    and job records only. Builds without a System (rows loaded before the column existed) count as Azure DevOps,
    the only system there was."""
    if builds.empty:
        return pd.DataFrame(columns=COLUMNS)
    system = builds["System"].fillna("azure_devops") if "System" in builds.columns else pd.Series(
        "azure_devops", index=builds.index)
    keys = ["Organization", "Project", "BuildId"]
    rows = []
    for name, group in builds.groupby(system, sort=True):
        own = jobs.merge(group[keys].drop_duplicates(), on=keys) if len(jobs) else jobs
        s = health.summary(group.reset_index(drop=True), own, main_branches)
        rows.append([SYSTEM_LABELS.get(str(name), str(name)), int(s["builds"]), s["pass_rate"],
                     s["pr_first_attempt_pass_rate"], s["p90_duration_minutes"], s["median_time_to_green_hours"],
                     s["retry_minutes_wasted"]])
    return pd.DataFrame(rows, columns=COLUMNS)
