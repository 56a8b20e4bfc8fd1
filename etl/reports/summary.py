"""The summary cards of each report, from the same figures and rows the report's sections show.

A card's *section* is the id nbconvert gives the heading of the section that explains it ("## Pass rate" →
"Pass-rate"), so a card on the page and on index.html links to its section.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from etl.reports.nbkit import Card, delta, fmt_num, fmt_pct

# Values of Alerts.Direction that name a change by its effect; anything else is shown as a plain "change".
DIRECTIONS = ("regression", "improvement")


def health_cards(now: Mapping[str, float], before: Mapping[str, float]) -> list[Card]:
    """The five CI health figures (health.summary of this period and of the previous one)."""
    return [
        Card("pass_rate", f"Build pass rate (n={int(now['builds'])})", fmt_pct(now["pass_rate"]),
             *delta(now["pass_rate"], before["pass_rate"], True, " pts", 100), section="Pass-rate"),
        Card("pr_first_attempt_pass_rate", "PR first-attempt pass rate", fmt_pct(now["pr_first_attempt_pass_rate"]),
             *delta(now["pr_first_attempt_pass_rate"], before["pr_first_attempt_pass_rate"], True, " pts", 100),
             section="Retries-and-first-attempt-pass-rate"),
        Card("p90_duration_minutes", "p90 duration, successful builds", fmt_num(now["p90_duration_minutes"]) + " min",
             *delta(now["p90_duration_minutes"], before["p90_duration_minutes"], False, " min"),
             section="Durations-and-queue-time"),
        Card("median_time_to_green_hours", "Median time to green (main)",
             fmt_num(now["median_time_to_green_hours"]) + " h",
             *delta(now["median_time_to_green_hours"], before["median_time_to_green_hours"], False, " h"),
             section="Time-to-green-on-main-branches"),
        Card("retry_minutes_wasted", "Machine minutes lost to job retries", fmt_num(now["retry_minutes_wasted"], 0),
             *delta(now["retry_minutes_wasted"], before["retry_minutes_wasted"], False, " min"),
             section="Retries-and-first-attempt-pass-rate"),
    ]


def _count(stats: pd.DataFrame, kind: str) -> int:
    return int((stats["Kind"] == kind).sum()) if len(stats) else 0


def _count_before(stats_prev: pd.DataFrame, kind: str) -> float:
    # no test results in the previous period: unknown, not zero
    return float(_count(stats_prev, kind)) if len(stats_prev) else float("nan")


def flaky_cards(stats: pd.DataFrame, stats_prev: pd.DataFrame, new: pd.DataFrame, hurt: pd.DataFrame) -> list[Card]:
    """Flaky, new flaky and broken tests and what the flaky ones cost (flaky.test_stats of both periods,
    flaky.new_flaky, flaky.impact)."""
    flaky_now, broken_now = _count(stats, "flaky"), _count(stats, "broken")
    return [
        Card("flaky_tests", f"Flaky tests (of {len(stats)} tests)", str(flaky_now),
             *delta(flaky_now, _count_before(stats_prev, "flaky"), False, digits=0), section="Flaky-tests,-ranked-by-flip-rate"),
        Card("new_flaky_tests", "New flaky tests this period", str(len(new)), "not flaky in the previous period",
             "bad" if len(new) else "good", section="New-flaky-tests-this-period"),
        Card("broken_tests", "Broken tests (failing consistently)", str(broken_now),
             *delta(broken_now, _count_before(stats_prev, "broken"), False, digits=0), section="Broken-tests"),
        Card("flaky_failed_builds", "Failed builds with a flaky test failing",
             str(int(hurt["FailedBuilds"].sum()) if len(hurt) else 0),
             f"{int(hurt['FailedPRs'].sum()) if len(hurt) else 0} PRs", section="Flaky-tests,-ranked-by-flip-rate"),
        Card("flaky_machine_minutes", "Machine minutes of those builds",
             fmt_num(float(hurt["MachineMinutes"].sum()) if len(hurt) else 0.0, 0),
             section="Flaky-tests,-ranked-by-flip-rate"),
    ]


def label(direction: object) -> str:
    """What a change is called: regression or improvement only when the alert row says so (a metric with a
    declared direction, a change that cleared the detector and its noise test), otherwise "change"."""
    return str(direction) if direction in DIRECTIONS else "change"


def changes_frame(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts rows of the period (alerts_in_period.kql) without flaky-test alerts, with their label, biggest first."""
    if alerts.empty:
        return alerts.assign(Change=pd.Series(dtype=object))
    rows = alerts[alerts["Kind"].fillna("") != "flaky"]
    rows = rows.assign(Change=[label(d) for d in rows["Direction"]])
    return rows.sort_values(["ChangePercent", "AlertId"], key=lambda c: c.abs() if c.name == "ChangePercent" else c,
                            ascending=[False, True]).reset_index(drop=True)


def regression_cards(changes: pd.DataFrame, open_before: int, watched: int, monitors: int) -> list[Card]:
    """Counts of the changes table (changes_frame): every card counts rows of that one frame."""
    def n(mask: pd.Series) -> int:
        return int(mask.sum()) if len(changes) else 0

    is_open = changes["Status"] == "open" if len(changes) else pd.Series(dtype=bool)
    regressions = n(is_open & (changes["Change"] == "regression")) if len(changes) else 0
    improvements = n(is_open & (changes["Change"] == "improvement")) if len(changes) else 0
    open_alerts = n(is_open)
    return [
        Card("series_watched", "Series watched", str(watched), f"{monitors} monitors in monitors.yaml"),
        Card("changes", "Changes in this period", str(len(changes)), "alerts of any status", section="Changes"),
        Card("open_regressions", "Open regressions", str(regressions), "", "bad" if regressions else "good",
             section="Open-alerts"),
        Card("open_improvements", "Open improvements", str(improvements), "", "good" if improvements else "flat",
             section="Open-alerts"),
        Card("open_alerts", "Open alerts in this period", str(open_alerts),
             f"{open_before} more open from before the period" if open_before else "none open from before",
             "bad" if open_before else "flat", section="Open-alerts"),
    ]
