"""The flakiness report's inputs: per-test figures counted in the store, not every test result of the period.

A period at dnceng's scale holds millions of test results and a few thousand tests. The store counts per test
(test_stats_in_period.kql), lists the commits of the tests that may be broken (test_hard_commits_in_period.kql),
the failures a flaky test's impact is counted from (test_failures_in_period.kql) and the outage runs
(test_outages_in_period.kql). When the report covers several definitions, which the kernel filters (a query
takes one), it counts from the rows instead (test_results_in_period.kql) — the same figures either way.
"""

from __future__ import annotations

import pandas as pd

from etl.analysis import flaky
from etl.reports.nbkit import ReportContext


def flaky_inputs(ctx: ReportContext, thresholds: flaky.FlakyThresholds,
                 previous: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(test stats as flaky.test_stats returns them, failed results for flaky.impact, outage runs) of the period."""
    if len(ctx.definitions) > 1:
        results = ctx.load("test_results_in_period", previous=previous)
        return (flaky.test_stats(results, thresholds), results,
                flaky.exclude_outages(results, thresholds)[1])
    counts = flaky.outage_parameters(thresholds)
    stats = flaky.stats_from_counts(ctx.load("test_stats_in_period", previous=previous, **counts),
                                    ctx.load("test_hard_commits_in_period", previous=previous, **counts), thresholds)
    failures = ctx.load("test_failures_in_period", previous=previous)
    outages = ctx.load("test_outages_in_period", previous=previous, **counts)
    return stats, failures, outages
