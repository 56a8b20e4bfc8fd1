"""What the flakiness report and retries read, counted in the store against moved into the kernel, on one store.

Measures, in one process and one run, on a store built by bench/scale.py (default: bench/.out/scale):
- flaky-test figures for the period and the previous one: every test result with all its columns, counted by
  flaky.test_stats (the reports before issue 14) against test_stats_in_period + test_hard_commits_in_period
  counted by flaky.stats_from_counts (now) — and checks both give the same frame;
- retries and flaky jobs: every Job record (jobs_in_period) against the builds that retried a job
  (retried_jobs_in_period) plus per-job build counts (job_builds_in_period) — same check.
Each figure is seconds and the Python heap the step allocated at its peak (tracemalloc), with the ratio.

Usage: python bench/report_inputs.py [--out bench/.out/scale] [--days 28]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.analysis import flaky, health  # noqa: E402
from etl.analysis.data import Period, load  # noqa: E402
from etl.warehouse.local import LocalWarehouse  # noqa: E402

#: test_results_in_period as it was: every column of every result.
ALL_COLUMNS = """declare query_parameters(start:datetime, end:datetime, organization:string = "", projectName:string = "", branch:string = "", definition:string = "");
LatestTestResults
| where QueueTime >= start and QueueTime < end
| project Organization, Project, RunId, ResultId, BuildId, Attempt, TestName, Outcome, DurationMs, ResultGroupType,
    PassedOnRerun, ErrorMessage, Signature, SourceVersion, JobName, Definition, SourceBranch, TargetBranch, BuildKind,
    QueueTime"""


def _same(a, b) -> bool:
    """Equal frames, or equal dicts of figures (sums up to float rounding: rows arrive in another order)."""
    if hasattr(a, "equals"):
        return a.equals(b)
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)


def timed(step):
    tracemalloc.start()
    t0 = time.perf_counter()
    value = step()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / (1 << 20)
    tracemalloc.stop()
    return value, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / ".out" / "scale"))
    parser.add_argument("--days", type=int, default=28)
    args = parser.parse_args()
    out = Path(args.out)
    wh = LocalWarehouse(out / "scale.duckdb", read_only=True)
    period = Period.last_days(args.days, end=datetime.fromisoformat((out / "end.txt").read_text().strip()))
    th = flaky.FlakyThresholds()
    counts = flaky.outage_parameters(th)

    def rows_path():
        return [flaky.test_stats(wh.query(ALL_COLUMNS, p.params()), th) for p in (period, period.previous())]

    def counts_path():
        return [flaky.stats_from_counts(load(wh, "test_stats_in_period", p, **counts),
                                        load(wh, "test_hard_commits_in_period", p, **counts), th)
                for p in (period, period.previous())]

    def all_jobs():
        jobs = load(wh, "jobs_in_period", period)
        return health.retries(jobs, builds), flaky.flaky_jobs(jobs)

    def retried_jobs():
        jobs = load(wh, "retried_jobs_in_period", period)
        return health.retries(jobs, builds), flaky.flaky_jobs(jobs, load(wh, "job_builds_in_period", period))

    builds = load(wh, "builds_in_period", period)
    print(f"store {out}: {args.days}-day period ending {period.end:%Y-%m-%d}")
    for label, before, after in (("flaky-test figures, 2 periods", rows_path, counts_path),
                                 ("retries and flaky jobs", all_jobs, retried_jobs)):
        old, t_old, m_old = timed(before)
        new, t_new, m_new = timed(after)
        same = all(_same(a, b) for a, b in zip(old, new, strict=True))
        print(f"{label}: rows in the kernel {t_old:.2f} s, {m_old:.0f} MB; counted in the store {t_new:.2f} s, "
              f"{m_new:.0f} MB — {t_old / t_new:.1f}× faster, {m_old / max(m_new, 0.1):.0f}× less memory; "
              f"same answer: {same}")
    wh.close()


if __name__ == "__main__":
    main()
