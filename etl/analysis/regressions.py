"""Regression detection: metric series per definition × metric × platform, change points, Alerts rows.

A series is the values of one metric for one (organization, project, definition, platform), one point per
build (the median when a build reported several samples, e.g. memory samples), in build order (timestamp,
then build id). Each change point found by the monitor's technique becomes an Alerts row whose AlertId is a
stable hash of (organization, metric, series, first build after the change), so a re-run finds the same
ids and adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from etl.analysis.detectors import DISTRIBUTION_TECHNIQUES, cdf_score, detect, noise_scale, noise_test
from etl.analysis.monitors import Monitor, Monitors
from etl.timeutil import utc_now

SERIES_KEYS = ["Organization", "Project", "Definition", "Metric", "Platform"]
BUILD_DURATION = "build_duration_seconds"


@dataclass(frozen=True)
class Series:
    """One metric series, points in build order."""

    organization: str
    project: str
    definition: str
    metric: str
    platform: str
    points: pd.DataFrame  # BuildId, SourceVersion, Timestamp, Value

    @property
    def name(self) -> str:
        return f"{self.project}/{self.definition}/{self.platform or 'any'}"


def builds_as_samples(builds: pd.DataFrame) -> pd.DataFrame:
    """Successful builds' DurationSeconds (TimelineBuilds) as metric rows named build_duration_seconds."""
    ok = builds[builds["Result"] == "succeeded"] if len(builds) else builds
    return pd.DataFrame({
        "Organization": ok.get("Organization"), "Project": ok.get("Project"), "Definition": ok.get("Definition"),
        "Metric": BUILD_DURATION, "Platform": "", "BuildId": ok.get("BuildId"), "SourceVersion": ok.get("SourceVersion"),
        "Timestamp": ok.get("FinishTime"), "Value": ok.get("DurationSeconds"),
    })


def series(samples: pd.DataFrame, metrics: list[str] | None = None) -> Iterator[Series]:
    """Split metric_series.kql rows into series (one point per build), optionally only *metrics*."""
    if samples.empty:
        return
    s = samples if metrics is None else samples[samples["Metric"].isin(metrics)]
    s = s.assign(Platform=s["Platform"].fillna(""), Definition=s["Definition"].fillna(""))
    # One grouping over every series and build at once (a per-series groupby costs ~50 ms each, and a 90-day
    # store holds hundreds of series), then one sort; each series is a slice of the result.
    points = s.groupby([*SERIES_KEYS, "BuildId"], sort=False).agg(
        Timestamp=("Timestamp", "min"), Value=("Value", "median"), SourceVersion=("SourceVersion", "first")
    ).reset_index().sort_values([*SERIES_KEYS, "Timestamp", "BuildId"])
    keys = points[SERIES_KEYS].drop_duplicates()
    # a build that reported no value is no point of the series (not a gap the detector must bridge)
    points = points[np.isfinite(points["Value"].astype(float))]
    by_key = dict(iter(points.groupby(SERIES_KEYS, sort=True)))
    empty = points.iloc[:0]
    columns = ["BuildId", "Timestamp", "Value", "SourceVersion"]
    for key in sorted(keys.itertuples(index=False, name=None)):
        g = by_key.get(key, empty)
        yield Series(*key, points=g[columns].reset_index(drop=True))  # type: ignore[arg-type]


def alert_id(organization: str, metric: str, series_name: str, build_after: int) -> str:
    """Stable id: the same change found again is the same alert."""
    text = f"{organization}|{metric}|{series_name}|{int(build_after)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _direction(pct: float, direction: str | None) -> str:
    """regression or improvement for a metric with a declared direction; otherwise (or with no change) change."""
    if pct == 0 or direction is None:
        return "change"
    worse = pct > 0 if direction == "lower_is_better" else pct < 0
    return "regression" if worse else "improvement"


def changes(s: Series, monitor: Monitor, monitors: Monitors, detected_at: datetime | None = None) -> list[dict]:
    """Alerts rows (dicts for the Alerts table) for the change points of one series that pass the noise test.

    A change point of the monitor's technique is kept only when a Mann-Whitney U test of the `noise_window`
    values either side of it (within the neighbouring segments) gives p < `noise_alpha`; Before/After are the
    medians of those values. Kind and Direction are regression/improvement when the monitor declares a
    direction, change otherwise.
    """
    technique, args = monitors.technique(monitor)
    min_points = monitor.min_points or monitors.defaults.min_points
    window, alpha = monitors.defaults.noise_window, monitors.defaults.noise_alpha
    values = s.points["Value"].to_numpy(dtype=float)
    if np.isfinite(values).sum() < min_points:
        return []
    idx = detect(values, technique, **args)
    detected_at = detected_at or utc_now()
    scale = noise_scale(values[np.isfinite(values)])
    edges = [0, *idx, len(values)]
    rows = []
    for k, i in enumerate(idx):
        before = values[max(edges[k], i - window) : i]
        after = values[i : min(edges[k + 2], i + window)]
        before, after = before[np.isfinite(before)], after[np.isfinite(after)]
        p = noise_test(before, after)
        if p is None or p >= alpha:
            continue
        b, a = float(np.median(before)), float(np.median(after))
        pct = (a - b) / abs(b) * 100 if b else 0.0
        p_before, p_after = s.points.iloc[i - 1], s.points.iloc[i]
        kind = _direction(pct, monitor.declared_direction)
        rows.append({
            "AlertId": alert_id(s.organization, s.metric, s.name, int(p_after["BuildId"])),
            "Kind": kind, "Metric": s.metric, "Series": s.name,
            "Organization": s.organization, "Project": s.project, "Definition": s.definition, "Platform": s.platform,
            "Technique": technique, "DetectedAt": detected_at, "ChangeAt": p_after["Timestamp"],
            "BuildBefore": int(p_before["BuildId"]), "BuildAfter": int(p_after["BuildId"]),
            "CommitBefore": str(p_before["SourceVersion"] or ""), "CommitAfter": str(p_after["SourceVersion"] or ""),
            "Before": b, "After": a, "ChangePercent": round(pct, 3),
            "Direction": kind, "Score": round(abs(a - b) / scale, 3),
            "Status": "open", "Resolution": "", "Url": "",
            "Details": {"index": int(i), "points": len(values), "args": args, "mode": monitor.mode,
                        "p_value": round(p, 6), "direction": monitor.declared_direction or ""},
            "IngestedAt": detected_at,
        })
    return rows


def distribution_changes(
    samples: pd.DataFrame, monitor: Monitor, monitors: Monitors, detected_at: datetime | None = None
) -> list[dict]:
    """Alerts rows for a distribution-valued probe: every sample of a series, grouped by UTC day.

    A change is a day whose empirical distribution differs from the days before it (squared CDF
    difference); Before/After are the medians of the reference days' and that day's samples.
    """
    technique, args = monitors.technique(monitor)
    back = int(args.get("back", 3))
    detected_at = detected_at or utc_now()
    rows = []
    s = samples.assign(Platform=samples["Platform"].fillna(""), Definition=samples["Definition"].fillna(""))
    for key, g in s[s["Value"].notna()].groupby(SERIES_KEYS, sort=True):
        organization, project, definition, metric, platform = key
        if monitor.platforms and platform not in monitor.platforms:
            continue
        g = g.sort_values(["Timestamp", "BuildId"])
        by_day = [(day, d) for day, d in g.groupby(pd.to_datetime(g["Timestamp"]).dt.floor("D"), sort=True)]
        if len(by_day) < max(back + 2, 4):
            continue
        name = f"{project}/{definition}/{platform or 'any'}"
        for i in DISTRIBUTION_TECHNIQUES[technique]([d["Value"].to_numpy(dtype=float) for _, d in by_day], **args):
            day, today = by_day[i]
            reference = pd.concat([d for _, d in by_day[max(0, i - back) : i]])
            p_value = noise_test(reference["Value"].to_numpy(float), today["Value"].to_numpy(float))
            if p_value is None or p_value >= monitors.defaults.noise_alpha:
                continue
            b, a = float(reference["Value"].median()), float(today["Value"].median())
            pct = (a - b) / abs(b) * 100 if b else 0.0
            first_after, last_before = today.iloc[0], reference.iloc[-1]
            kind = _direction(pct, monitor.declared_direction)
            rows.append({
                "AlertId": alert_id(organization, metric, name, int(first_after["BuildId"])),
                "Kind": kind, "Metric": metric, "Series": name, "Organization": organization,
                "Project": project, "Definition": definition, "Platform": platform, "Technique": technique,
                "DetectedAt": detected_at, "ChangeAt": day.to_pydatetime(),
                "BuildBefore": int(last_before["BuildId"]), "BuildAfter": int(first_after["BuildId"]),
                "CommitBefore": str(last_before["SourceVersion"] or ""), "CommitAfter": str(first_after["SourceVersion"] or ""),
                "Before": b, "After": a, "ChangePercent": round(pct, 3),
                "Direction": kind,
                "Score": round(cdf_score(np.sort(reference["Value"].to_numpy(float)), np.sort(today["Value"].to_numpy(float))), 4),
                "Status": "open", "Resolution": "", "Url": "",
                "Details": {"day_index": int(i), "days": len(by_day), "args": args, "mode": monitor.mode,
                            "p_value": round(p_value, 6), "direction": monitor.declared_direction or ""},
                "IngestedAt": detected_at,
            })
    return rows


def detect_regressions(samples: pd.DataFrame, monitors: Monitors, detected_at: datetime | None = None) -> pd.DataFrame:
    """Every change of every monitored series (alert and monitor-only; see the Details.mode / `mode` column)."""
    rows: list[dict] = []
    metrics = sorted({m for m in samples["Metric"].unique() if monitors.get(m)}) if len(samples) else []
    per_build = []
    for metric in metrics:
        monitor = monitors.get(metric)
        assert monitor is not None
        if monitors.technique(monitor)[0] in DISTRIBUTION_TECHNIQUES:
            rows.extend(distribution_changes(samples[samples["Metric"] == metric], monitor, monitors, detected_at))
        else:
            per_build.append(metric)
    for s in series(samples, per_build):
        monitor = monitors.get(s.metric)
        if monitor is None or (monitor.platforms and s.platform not in monitor.platforms):
            continue
        rows.extend(changes(s, monitor, monitors, detected_at))
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["AlertId", "Metric", "Series", "BuildAfter", "ChangePercent", "Direction", "mode"])
    out["mode"] = [d["mode"] for d in out["Details"]]
    return out


def to_alert_rows(changes_frame: pd.DataFrame, mode: str = "") -> list[dict]:
    """The changes as rows for the Alerts table; *mode* "alert" or "monitor" keeps only that mode's."""
    if changes_frame.empty:
        return []
    kept = changes_frame if not mode else changes_frame[changes_frame["mode"] == mode]
    return kept.drop(columns=["mode"]).to_dict(orient="records")
