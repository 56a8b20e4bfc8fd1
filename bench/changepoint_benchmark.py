"""Change-point benchmark of the default technique (etl.analysis.detectors), TCPDBench style.

Metrics as in van den Burg & Williams, "An Evaluation of Change Point Detection Algorithms" (TCPDBench):
- F1 with a margin of 5: a predicted change counts when within 5 points of an annotated one (each annotation
  matched once); index 0 is a change point of every segmentation; precision over the union of annotators'
  matches, recall averaged over annotators.
- cover: the covering metric of the annotated segmentation by the predicted one (mean over annotators).
Next to the technique, the "zero" baseline (no change predicted) — TCPDBench's reference method.

Data:
1. SYNTHETIC (always): a seeded, documented set of 120 series with known change points, shaped like CI series:
   no change; one level step; several steps; steps with outliers (a slow agent); a step in heavy-tailed
   (Student t, 3 d.o.f.) noise; a slow drift with no change (a trap: the right answer is no change point);
   a variance-only change (level-based techniques are not expected to find it).
2. REAL (when present): series in the TCPD dataset format with their human annotations, from
   `bench/data/tcpd/` (annotations.json + <name>.json), e.g. a subset of the Turing Change Point Dataset.
   Absent here unless added; the script says which sets it scored.

Usage: python bench/changepoint_benchmark.py [--technique pelt] [--tcpd DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.analysis.detectors import DEFAULT_TECHNIQUE, detect  # noqa: E402

MARGIN = 5
SEED = 2024


# --- metrics (TCPDBench definitions) -------------------------------------------------------------------

def _true_positives(truth: set[int], pred: set[int], margin: int = MARGIN) -> set[int]:
    """Annotated points matched by a prediction within margin, each prediction used once (closest first)."""
    tp = set()
    left = set(pred)
    for t in sorted(truth):
        close = sorted((abs(t - p), p) for p in left if abs(t - p) <= margin)
        if close:
            tp.add(t)
            left.discard(close[0][1])
    return tp


def f_measure(annotations: dict[str, list[int]], predictions: list[int], margin: int = MARGIN) -> float:
    """F1 as in TCPDBench: 0 counts as a change point for everyone."""
    pred = {0, *predictions}
    users = [{0, *a} for a in annotations.values()]
    union_tp: set[int] = set()
    recalls = []
    for truth in users:
        tp = _true_positives(truth, pred, margin)
        union_tp |= {p for p in pred if any(abs(p - t) <= margin for t in tp)}
        recalls.append(len(tp) / len(truth))
    precision = len(union_tp) / len(pred)
    recall = float(np.mean(recalls))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _segments(points: list[int], n: int) -> list[set[int]]:
    edges = sorted({0, *[p for p in points if 0 < p < n], n})
    return [set(range(a, b)) for a, b in pairwise(edges)]


def covering(annotations: dict[str, list[int]], predictions: list[int], n: int) -> float:
    """Cover of each annotator's segmentation by the predicted one, averaged over annotators."""
    pred = _segments(predictions, n)
    scores = []
    for truth in annotations.values():
        total = 0.0
        for seg in _segments(truth, n):
            total += len(seg) * max(len(seg & p) / len(seg | p) for p in pred)
        scores.append(total / n)
    return float(np.mean(scores))


# --- data ------------------------------------------------------------------------------------------------

def synthetic(seed: int = SEED) -> list[tuple[str, str, np.ndarray, dict[str, list[int]]]]:
    """(name, kind, values, {"truth": change points}) for the documented synthetic benchmark."""
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

    kinds: dict[str, Callable[[int], tuple[np.ndarray, list[int]]]] = {}

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

    kinds = {"no_change": no_change, "one_step": one_step, "multi_step": multi_step, "outliers": outliers,
             "heavy_tail": heavy_tail, "drift": drift, "variance": variance}
    counts = {"no_change": 20, "one_step": 25, "multi_step": 20, "outliers": 20, "heavy_tail": 15, "drift": 10,
              "variance": 10}
    for kind, fn in kinds.items():
        for i in range(counts[kind]):
            n = int(rng.integers(80, 400))
            values, cps = fn(n)
            out.append((f"{kind}_{i:02d}", kind, values, {"truth": cps}))
    return out


def tcpd(directory: Path) -> list[tuple[str, str, np.ndarray, dict[str, list[int]]]]:
    """Univariate TCPD-format datasets with their annotations from *directory* (empty when absent)."""
    notes = directory / "annotations.json"
    if not notes.exists():
        return []
    annotations = json.loads(notes.read_text())
    out = []
    for path in sorted(directory.glob("*.json")):
        if path.name == "annotations.json" or path.stem not in annotations:
            continue
        data = json.loads(path.read_text())
        if len(data["series"]) != 1:
            continue
        raw = np.array([np.nan if v is None else v for v in data["series"][0]["raw"]], dtype=float)
        if np.isnan(raw).any():
            continue
        out.append((path.stem, "tcpd", raw, annotations[path.stem]))
    return out


# --- run -------------------------------------------------------------------------------------------------

def score(series, technique: str) -> dict[str, dict[str, list[float]]]:
    rows: dict[str, dict[str, list[float]]] = {}
    for _, kind, values, notes in series:
        for method in (technique, "zero"):
            pred = [] if method == "zero" else detect(values.tolist(), technique)
            r = rows.setdefault(kind, {}).setdefault(method, [])
            r.append((f_measure(notes, pred), covering(notes, pred, len(values))))
    return rows


def report(title: str, series, technique: str) -> None:
    rows = score(series, technique)
    print(f"\n{title}: {len(series)} series — F1 (margin {MARGIN}) and cover, mean per series")
    print(f"{'kind':<12} {'n':>4}  {technique + ' F1':>10} {'cover':>7}   {'zero F1':>8} {'cover':>7}")
    totals: dict[str, list[tuple[float, float]]] = {technique: [], "zero": []}
    for kind, by_method in rows.items():
        t = np.array(by_method[technique])
        z = np.array(by_method["zero"])
        totals[technique] += by_method[technique]
        totals["zero"] += by_method["zero"]
        print(f"{kind:<12} {len(t):>4}  {t[:, 0].mean():>10.3f} {t[:, 1].mean():>7.3f}   {z[:, 0].mean():>8.3f} {z[:, 1].mean():>7.3f}")
    t, z = np.array(totals[technique]), np.array(totals["zero"])
    print(f"{'ALL':<12} {len(t):>4}  {t[:, 0].mean():>10.3f} {t[:, 1].mean():>7.3f}   {z[:, 0].mean():>8.3f} {z[:, 1].mean():>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--technique", default=DEFAULT_TECHNIQUE)
    parser.add_argument("--tcpd", type=Path, default=ROOT / "bench" / "data" / "tcpd")
    args = parser.parse_args()
    report(f"SYNTHETIC (seed {SEED}, generated)", synthetic(), args.technique)
    real = tcpd(args.tcpd)
    if real:
        report(f"REAL (TCPD format, {args.tcpd})", real, args.technique)
    else:
        print(f"\nREAL: no TCPD-format data in {args.tcpd}; scored the synthetic benchmark only.")


if __name__ == "__main__":
    main()
