"""Change-point benchmark of the default detector (etl.analysis.detectors) on real annotated series.

Metrics are the TCPD benchmark's (van den Burg & Williams, "An Evaluation of Change Point Detection
Algorithms", 2020), re-implemented from the paper's definitions:
- F1 with a margin of 5 points, index 0 counted as a change point of every annotator and of every
  prediction; precision = true positives against the union of all annotators' points / number of
  predictions, recall = mean over annotators of their own recall, F1 = their harmonic mean.
- cover: segmentation covering of each annotator's partition by the predicted one, mean over annotators.
Scores are means over series. Every method is scored in the same run:
- default: `detect(values)` with its defaults (nothing depends on the series);
- zero: no change point (TCPDBench's reference);
- binseg / pelt: ruptures Binseg / Pelt, l2 cost, on the z-scored series, BIC penalty 2 log n.

Sets:
- DEVELOPMENT: the 13 TCPD series with 5 annotators each in bench/data/tcpd-dev (the headline);
- HELD OUT (real): apple and bitcoin as shipped, standardized, with one annotated change each, by the
  cpdbench package (bench/data/heldout); never used to choose the defaults;
- HELD OUT (synthetic): CI-shaped series from a generator unlike the regression set's (AR(1) noise, trends,
  random units and offsets, missing values);
- SYNTHETIC REGRESSION SET (seed 2024): the project's original 120 series, kept as a regression check.

Usage: python bench/changepoint_benchmark.py [--technique binseg]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.analysis.detectors import DEFAULT_TECHNIQUE, detect  # noqa: E402

DATA = ROOT / "bench" / "data"
MARGIN = 5
SEED = 2024
HELDOUT_SEED = 99

Series = tuple[str, str, np.ndarray, dict[str, list[int]]]


# --- metrics (TCPDBench definitions) -------------------------------------------------------------------

def true_positives(truth: set[int], predictions: set[int], margin: int = MARGIN) -> set[int]:
    """Annotated points that have a prediction within *margin*; each prediction matches one point, the
    closest (ties: the smaller index), annotated points taken in increasing order."""
    left = set(predictions)
    found = set()
    for t in sorted(truth):
        close = sorted((abs(t - p), p) for p in left if abs(t - p) <= margin)
        if close:
            found.add(t)
            left.remove(close[0][1])
    return found


def f_measure(annotations: dict[str, list[int]], predictions: Sequence[int], margin: int = MARGIN) -> float:
    """TCPD F1: precision against the union of annotators, recall averaged over annotators; 0 in every set."""
    users = [{0, *a} for a in annotations.values()]
    pred = {0, *predictions}
    union = set().union(*users)
    precision = len(true_positives(union, pred, margin)) / len(pred)
    recall = float(np.mean([len(true_positives(u, pred, margin)) / len(u) for u in users]))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _partition(points: Sequence[int], n: int) -> list[set[int]]:
    edges = sorted({0, *[p for p in points if 0 < p < n], n})
    return [set(range(a, b)) for a, b in pairwise(edges)]


def covering(annotations: dict[str, list[int]], predictions: Sequence[int], n: int) -> float:
    """TCPD cover: sum over each annotated segment of |segment| × best Jaccard overlap with a predicted
    segment, over n; mean over annotators."""
    pred = _partition(predictions, n)
    scores = []
    for truth in annotations.values():
        total = sum(len(seg) * max(len(seg & p) / len(seg | p) for p in pred) for seg in _partition(truth, n))
        scores.append(total / n)
    return float(np.mean(scores))


# --- data ------------------------------------------------------------------------------------------------

def tcpd(directory: Path) -> list[Series]:
    """TCPD-format series (<name>/<name>.json, `null` for missing) with annotations.json beside them."""
    notes = json.loads((directory / "annotations.json").read_text())
    out = []
    for name in sorted(notes):
        data = json.loads((directory / name / f"{name}.json").read_text())
        raw = np.array([np.nan if v is None else v for v in data["series"][0]["raw"]], dtype=float)
        out.append((name, "tcpd-dev", raw, notes[name]))
    return out


def heldout_real(directory: Path) -> list[Series]:
    """cpdbench's example series: first column of <name>.npy, one annotated change each (ExampleDatasets.py)."""
    truth = {"apple": [337], "bitcoin": [569]}
    return [(name, "real", np.load(directory / f"{name}.npy")[:, 0].astype(float), {"cpdbench": cps})
            for name, cps in truth.items() if (directory / f"{name}.npy").exists()]


def heldout_synthetic(seed: int = HELDOUT_SEED) -> list[Series]:
    """CI-shaped series unlike the regression set: AR(1) noise (phi 0.3), a linear trend under steps,
    log-normal (right-skewed) noise, random unit and offset, and 5 % missing values."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(60):
        kind = ("ar1", "trend_step", "lognormal")[i % 3]
        k = int(rng.integers(0, 4))
        n = int(rng.integers(60 + 40 * k, 500))  # room for k changes 20 apart and 20 from either end
        cps: list[int] = []
        while len(cps) < k:
            c = int(rng.integers(20, n - 20))
            if all(abs(c - d) >= 20 for d in cps):
                cps.append(c)
        cps.sort()
        eps = np.zeros(n)
        e = rng.normal(0, 1, n)
        for t in range(n):
            eps[t] = 0.3 * eps[t - 1] + e[t] if t else e[t]
        if kind == "lognormal":
            eps = rng.lognormal(0, 0.6, n) - np.exp(0.18)
        level = np.zeros(n)
        for c in cps:
            level[c:] += rng.choice([-1, 1]) * rng.uniform(3, 6)
        trend = np.linspace(0, rng.uniform(-4, 4), n) if kind == "trend_step" else 0.0
        y = (level + trend + eps) * 10 ** rng.uniform(-2, 4) + rng.uniform(-1e3, 1e3)
        y[rng.random(n) < 0.05] = np.nan
        out.append((f"{kind}_{i:02d}", "synthetic-heldout", y, {"truth": cps}))
    return out


def synthetic(seed: int = SEED) -> list[Series]:
    """The project's original 120-series regression set: steps, outliers, heavy tails, drift, variance."""
    rng = np.random.default_rng(seed)
    out = []

    def steps(n: int, k: int) -> list[int]:
        while True:
            cps = sorted(rng.choice(np.arange(15, n - 15), size=k, replace=False).tolist())
            if all(b - a >= 15 for a, b in pairwise(cps)):
                return cps

    def levels(n: int, cps: list[int], base: float, noise: float) -> np.ndarray:
        y = np.full(n, base)
        level = base
        for c in cps:
            level += rng.choice([-1, 1]) * rng.uniform(2.5, 6) * noise
            y[c:] = level
        return y

    def no_change(n):
        return 100 + rng.normal(0, 5, n), []

    def one_step(n):
        cps = steps(n, 1)
        return levels(n, cps, 100, 5) + rng.normal(0, 5, n), cps

    def multi_step(n):
        cps = steps(n, int(rng.integers(2, 5)))
        return levels(n, cps, 100, 5) + rng.normal(0, 5, n), cps

    def outliers(n):
        cps = steps(n, int(rng.integers(1, 3)))
        y = levels(n, cps, 100, 5) + rng.normal(0, 5, n)
        idx = rng.choice(n, size=max(2, n // 40), replace=False)
        y[idx] += rng.uniform(8, 15, len(idx)) * 5  # single slow builds
        return y, cps

    def heavy_tail(n):
        cps = steps(n, 1)
        return levels(n, cps, 100, 5) + 5 * rng.standard_t(3, n), cps

    def drift(n):
        return 100 + np.linspace(0, rng.uniform(5, 10), n) + rng.normal(0, 5, n), []

    def variance(n):
        cps = steps(n, 1)
        y = 100 + rng.normal(0, 3, n)
        y[cps[0]:] = 100 + rng.normal(0, 12, n - cps[0])
        return y, cps

    kinds: dict[str, Callable[[int], tuple[np.ndarray, list[int]]]] = {
        "no_change": no_change, "one_step": one_step, "multi_step": multi_step, "outliers": outliers,
        "heavy_tail": heavy_tail, "drift": drift, "variance": variance}
    counts = {"no_change": 20, "one_step": 25, "multi_step": 20, "outliers": 20, "heavy_tail": 15, "drift": 10,
              "variance": 10}
    for kind, fn in kinds.items():
        for i in range(counts[kind]):
            n = int(rng.integers(80, 400))
            values, cps = fn(n)
            out.append((f"{kind}_{i:02d}", kind, values, {"truth": cps}))
    return out


# --- methods ---------------------------------------------------------------------------------------------

def _plain(algo: str) -> Callable[[np.ndarray], list[int]]:
    """ruptures with l2 cost on the z-scored series and a BIC penalty of 2 log n (level and location)."""
    def run(values: np.ndarray) -> list[int]:
        import ruptures

        keep = np.flatnonzero(np.isfinite(values))
        x = values[keep]
        if len(x) < 4 or np.std(x) == 0:
            return []
        signal = ((x - x.mean()) / x.std()).reshape(-1, 1)
        cls = ruptures.Binseg if algo == "binseg" else ruptures.Pelt
        bkps = cls(model="l2", min_size=2, jump=1).fit(signal).predict(pen=2 * np.log(len(x)))
        return [int(keep[b]) for b in bkps if b < len(x)]
    return run


def methods(technique: str) -> dict[str, Callable[[np.ndarray], list[int]]]:
    return {
        "default" if technique == DEFAULT_TECHNIQUE else technique: lambda v: detect(v.tolist(), technique),
        "zero": lambda v: [],
        "binseg": _plain("binseg"),
        "pelt": _plain("pelt"),
    }


def score(series: list[Series], technique: str, skip: tuple[str, ...] = ()) -> dict[str, tuple[float, float]]:
    """Mean F1 and mean cover of every method (but *skip*) over *series*."""
    out = {}
    for method, fn in methods(technique).items():
        if method in skip:
            continue
        pairs = []
        for _, _, values, notes in series:
            pred = fn(values)
            pairs.append((f_measure(notes, pred), covering(notes, pred, len(values))))
        f1, cover = np.mean(pairs, axis=0)
        out[method] = (float(f1), float(cover))
    return out


def report(title: str, series: list[Series], technique: str, skip: tuple[str, ...] = ()) -> dict[str, tuple[float, float]]:
    t0 = time.perf_counter()
    scores = score(series, technique, skip)
    print(f"\n{title}: {len(series)} series ({time.perf_counter() - t0:.1f} s)")
    print(f"  {'method':<10} {'F1':>6} {'cover':>7}")
    for method, (f1, cover) in scores.items():
        print(f"  {method:<10} {f1:>6.3f} {cover:>7.3f}")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--technique", default=DEFAULT_TECHNIQUE)
    args = parser.parse_args()
    print(f"technique {args.technique!r} with its defaults; F1 margin {MARGIN}, TCPD definitions")
    report("DEVELOPMENT (TCPD, bench/data/tcpd-dev)", tcpd(DATA / "tcpd-dev"), args.technique)
    real = heldout_real(DATA / "heldout")
    if real:
        report("HELD OUT, real (cpdbench apple, bitcoin)", real, args.technique)
    report(f"HELD OUT, synthetic CI-shaped (seed {HELDOUT_SEED})", heldout_synthetic(), args.technique)
    report(f"SYNTHETIC REGRESSION SET (seed {SEED})", synthetic(), args.technique)


if __name__ == "__main__":
    main()
