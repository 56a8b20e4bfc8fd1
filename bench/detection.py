"""Detection quality against the simulator's ground truth: flaky tests and planted regressions.

Runs the real ETL on the simulated organization into a temporary local store (or reuses one with --store),
then scores:
- flaky tests: precision and recall of `etl.analysis.flaky` (settings.reports thresholds) against
  ground_truth["flaky_tests"] (targets ≥ 0.95 / ≥ 0.90);
- regressions: planted changes of duration_seconds / peak_memory_mb found within ±2 builds by the monitors'
  technique (config/monitors.yaml), and false alerts (changes on those series matching no planted change)
  per 50 series (target ≤ 1).

Usage: python bench/detection.py [--seed 7] [--days 28] [--builds-per-day 12] [--store DIR] [--technique NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.analysis import flaky, regressions  # noqa: E402
from etl.analysis.data import Period, load  # noqa: E402
from etl.analysis.monitors import Monitors, load_monitors  # noqa: E402
from etl.config import load_config  # noqa: E402
from etl.simulator import SimulatedOrganization  # noqa: E402
from etl.timeutil import utc_now  # noqa: E402
from etl.warehouse import connected  # noqa: E402

PLANTED_METRICS = ("duration_seconds", "peak_memory_mb")
MARGIN = 2


def build_store(root: Path, seed: int, days: int, per_day: int) -> Path:
    """Write a config under root and run the ETL into root/data; returns the config path."""
    from etl.run import RunOptions, run_etl

    (root / "config").mkdir(parents=True, exist_ok=True)
    config = root / "config" / "bench.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [{"kind": "simulator", "name": "simulated", "seed": seed, "days": days, "builds_per_day": per_day}],
        "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"},
        "staging": {"dir": "data/staging"},
        "classification": {"rules": str(ROOT / "config" / "failure-rules.yaml"),
                           "known_issues": str(ROOT / "config" / "known-issues.yaml")},
        "reports": {"monitors": str(ROOT / "config" / "monitors.yaml")},
    }))
    settings = load_config(config)
    with connected(settings) as wh:
        wh.apply_schema()
    t0 = time.monotonic()
    summary = run_etl(settings, RunOptions())
    print(f"ETL: {sum(summary.loaded.values())} rows in {time.monotonic() - t0:.1f} s, errors: {len(summary.errors)}")
    return config


def score_flaky(wh, period: Period, truth: dict, settings) -> None:
    rs = settings.reports
    thresholds = flaky.FlakyThresholds(min_results=rs.flaky_min_results, min_commits=rs.flaky_min_commits,
                                       min_rate=rs.flaky_min_rate)
    stats = flaky.test_stats(load(wh, "test_results_in_period", period), thresholds)
    found = set(stats[stats["Kind"] == "flaky"]["TestName"])
    expected = set(truth["flaky_tests"])
    tp = len(found & expected)
    precision = tp / len(found) if found else float("nan")
    recall = tp / len(expected) if expected else float("nan")
    broken = set(stats[stats["Kind"] == "broken"]["TestName"])
    b_expected = set(truth.get("broken_tests", []))
    print(f"flaky tests: expected {len(expected)}, found {len(found)}, true positives {tp}")
    print(f"  precision {precision:.3f} (target ≥ 0.95)   recall {recall:.3f} (target ≥ 0.90)")
    print(f"broken tests: expected {len(b_expected)}, found {len(broken)}, both {len(broken & b_expected)}")
    for name in sorted(found - expected)[:5]:
        print(f"  false flaky: {name}")
    for name in sorted(expected - found)[:5]:
        print(f"  missed flaky: {name}")


def score_regressions(wh, period: Period, truth: dict, monitors: Monitors, technique: str | None) -> None:
    samples = load(wh, "metric_series", period)
    # the simulator names definitions "\\path\\name"; the normalizer stores them without the leading backslash
    planted = {(r["project"], r["definition"].lstrip("\\"), r["metric"], r["platform"]): r for r in truth["regressions"]}
    hits = false = n_series = 0
    misses = []
    for s in regressions.series(samples, list(PLANTED_METRICS)):
        monitor = monitors.get(s.metric)
        if monitor is None:
            continue
        if technique:
            monitor = monitor.model_copy(update={"technique": technique, "args": {}})
        n_series += 1
        rows = regressions.changes(s, monitor, monitors)
        found_builds = [r["BuildAfter"] for r in rows]
        ids = s.points["BuildId"].tolist()
        found_idx = [ids.index(b) for b in found_builds]
        truth_row = planted.get((s.project, s.definition, s.metric, s.platform))
        if truth_row is not None:
            target = ids.index(truth_row["build_id"]) if truth_row["build_id"] in ids else truth_row["index"]
            near = [i for i in found_idx if abs(i - target) <= MARGIN]
            if near:
                hits += 1
            else:
                misses.append((s.name, s.metric, target, found_idx))
            false += len(found_idx) - len(near[:1])
        else:
            false += len(found_idx)
    n_planted = len(truth["regressions"])
    print(f"regressions: planted {n_planted}, found within ±{MARGIN} builds {hits} "
          f"(recall {hits / n_planted if n_planted else float('nan'):.3f})")
    print(f"  false alerts {false} over {n_series} series = {false / n_series * 50 if n_series else 0:.2f} per 50 series (target ≤ 1)")
    for m in misses[:5]:
        print(f"  missed: {m[0]} {m[1]} at index {m[2]}; found {m[3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--builds-per-day", type=int, default=12)
    parser.add_argument("--store", type=Path, help="Reuse this directory's store (created there when missing).")
    parser.add_argument("--technique", help="Override the monitors' technique for the regression score.")
    args = parser.parse_args()
    org = SimulatedOrganization(seed=args.seed, days=args.days, builds_per_day=args.builds_per_day)
    truth = org.ground_truth()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.store or Path(tmp)
        config = root / "config" / "bench.yaml"
        if not (root / "data" / "warehouse.duckdb").exists():
            config = build_store(root, args.seed, args.days, args.builds_per_day)
        settings = load_config(config)
        with connected(settings, read_only=True) as wh:
            today = utc_now().date()
            end = datetime.combine(today, datetime.min.time()) + timedelta(days=1)
            period = Period(end - timedelta(days=args.days + 2), end)
            print(f"seed {args.seed}, {args.days} days × {args.builds_per_day} builds/day")
            score_flaky(wh, period, truth, settings)
            score_regressions(wh, period, truth, load_monitors(ROOT / "config" / "monitors.yaml"), args.technique)


if __name__ == "__main__":
    main()
