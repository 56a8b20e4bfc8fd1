"""Detection time at scale: 100 definitions × 500 builds, and agreement with ruptures on the synthetic set.

Prints, from one run on this machine:
- the time of `detect()` with the default technique over 100 series of 500 builds (issue 14's target ≤ 10 s),
  and the same for ruptures' Pelt (the old default: l1 cost, jump 1) on the first 5 series, extrapolated;
- on the 120-series synthetic regression set (bench/changepoint_benchmark.py), how many series the default's
  own O(n log n) binary segmentation splits exactly where ruptures' Binseg with the same cost ("linear") and
  penalty does, and both times.

Usage: python bench/detection_speed.py [--series 100] [--builds 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from changepoint_benchmark import synthetic  # noqa: E402

from etl.analysis import detectors  # noqa: E402


def fleet(series: int, builds: int, seed: int = 14) -> list[np.ndarray]:
    """CI-like duration series: a level, 0-3 steps of 20-60 %, 5 % noise, a few slow builds."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(series):
        level = np.full(builds, rng.uniform(60, 3600))
        for at in sorted(rng.choice(np.arange(50, builds - 50), size=int(rng.integers(0, 4)), replace=False)):
            level[at:] *= 1 + rng.choice([-1, 1]) * rng.uniform(0.2, 0.6)
        values = level * (1 + rng.normal(0, 0.05, builds))
        slow = rng.choice(builds, size=builds // 50, replace=False)
        values[slow] *= rng.uniform(1.5, 3, len(slow))
        out.append(values)
    return out


def ruptures_binseg(values: np.ndarray) -> list[int]:
    import ruptures

    x = detectors.robust_scaled(values)
    n = len(x)
    signal = np.column_stack([x, np.arange(n) / n, np.ones(n)])
    return ruptures.Binseg(model="linear", min_size=3, jump=1).fit(signal).predict(pen=3.0 * np.log(n))[:-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--builds", type=int, default=500)
    args = parser.parse_args()
    data = fleet(args.series, args.builds)

    t0 = time.perf_counter()
    found = [detectors.detect(v) for v in data]
    t_default = time.perf_counter() - t0
    print(f"default ({detectors.DEFAULT_TECHNIQUE}): {args.series} series × {args.builds} builds in {t_default:.2f} s "
          f"({sum(map(len, found))} change points)")

    sample = data[:5]
    t0 = time.perf_counter()
    for v in sample:
        detectors.pelt(v, penalty=4.0, model="l1", min_size=4)
    t_pelt = (time.perf_counter() - t0) / len(sample) * args.series
    print(f"ruptures Pelt (l1, jump 1; old default): ≈ {t_pelt:.1f} s for the same fleet "
          f"(5 series measured) — {t_pelt / t_default:.0f}× the default")

    syn = synthetic()
    t0 = time.perf_counter()
    ours = [detectors.binseg(v) for _, _, v, _ in syn]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = [ruptures_binseg(v) for _, _, v, _ in syn]
    t_theirs = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    print(f"synthetic regression set: identical change points on {same} of {len(syn)} series "
          f"(binseg {t_ours:.2f} s, ruptures Binseg 'linear' {t_theirs:.1f} s: {t_theirs / t_ours:.0f}×)")


if __name__ == "__main__":
    main()
