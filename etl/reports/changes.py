"""The regressions report's pieces: the series an alert was found on, and the chart of one alert's change.

Reads Alerts rows (alerts_in_period.kql) and the series (metric_series.kql, build durations); detects nothing.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from etl.analysis.detectors import DISTRIBUTION_TECHNIQUES
from etl.analysis.monitors import Monitors
from etl.analysis.regressions import Series, builds_as_samples, series
from etl.reports.nbkit import ReportContext, figure, fmt_change

DISTRIBUTION = sorted(DISTRIBUTION_TECHNIQUES)
TABLE_COLUMNS = ["Change", "Status", "Metric", "Series", "ChangeAt", "BuildBefore", "BuildAfter", "CommitBefore",
                 "CommitAfter", "Before", "After", "ChangePercent", "Technique", "AlertId"]
FORMATS = {"ChangePercent": fmt_change, "CommitBefore": lambda v: str(v or "")[:10],
           "CommitAfter": lambda v: str(v or "")[:10]}
SeriesKey = tuple[str, str, str]  # organization, metric, series name


def open_elsewhere(open_alerts: pd.DataFrame, changes: pd.DataFrame) -> int:
    """Open non-flaky alerts (alerts.kql, status open) whose change is outside the period's rows."""
    if open_alerts.empty:
        return 0
    rows = open_alerts[open_alerts["Kind"].fillna("") != "flaky"]
    shown = set(changes["AlertId"]) if len(changes) else set()
    return int((~rows["AlertId"].isin(shown)).sum())


def series_by_key(ctx: ReportContext, monitors: Monitors) -> dict[SeriesKey, Series]:
    """Every monitored series over the period and the previous one, by (organization, metric, series name)."""
    frames = [ctx.load("metric_series", previous=True), ctx.load("metric_series"),
              builds_as_samples(ctx.load("builds_in_period", previous=True)),
              builds_as_samples(ctx.load("builds_in_period"))]
    frames = [f for f in frames if len(f)]
    if not frames:
        return {}
    samples = pd.concat(frames, ignore_index=True)
    watched = sorted({m for m in samples["Metric"].unique() if monitors.get(m)})
    return {(s.organization, s.metric, s.name): s for s in series(samples, watched)}


def chart(row: Any, by_key: dict[SeriesKey, Series]) -> str:
    """One alert's series with the change marked: a dashed line at the first build after it and the medians
    before and after; "No data for this period." when the store holds no points of that series."""
    s = by_key.get((row.Organization, row.Metric, row.Series))
    title = (f"{row.Change}: {row.Metric} — {row.Series}: {fmt_change(row.ChangePercent)} "
             f"at build {row.BuildAfter}")
    fig = go.Figure()
    if s is not None and len(s.points):
        x = s.points["BuildId"].astype(str)
        fig.add_trace(go.Scatter(x=x, y=s.points["Value"], mode="lines+markers", name=row.Metric))
        after = s.points.index[s.points["BuildId"] == row.BuildAfter]
        if len(after):
            fig.add_vline(x=int(after[0]) - 0.5, line_dash="dash", line_color="red")
            cut = int(after[0])
            for part, level in ((x[:cut], row.Before), (x[cut:], row.After)):
                if len(part) and pd.notna(level):
                    fig.add_trace(go.Scatter(x=[part.iloc[0], part.iloc[-1]], y=[level, level], mode="lines",
                                             line={"color": "grey"}, showlegend=False, hoverinfo="skip"))
        fig.update_layout(title=title, xaxis_title="build", xaxis_type="category", showlegend=False)
    return figure(fig, height=320, title=title, alert_id=row.AlertId)
