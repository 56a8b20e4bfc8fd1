"""Change detectors over one numeric series (ordered by build): each returns the indices where a change starts.

Index i means "values[i] is the first value after the change", so values[i - 1] is the last one before it.
Every detector is a plain function of a sequence of floats; `detect(values, technique, **args)` picks one
by name. Missing values (None, NaN, ±inf) are dropped before detection and the indices returned refer to the
series as given, so a gap never shifts a change.

The default, `binseg`, needs no per-series setting (docs/change-detection.md):
- the series is scaled by a robust noise level, the MAD of its residuals around one straight line (a trend
  does not inflate it, and unlike differences it does not collapse on a smooth curve), so the result is the
  same whatever the unit or offset;
- values further than `clip` noise levels from their running median (5 points) are pulled back to that bound,
  so one slow build or a heavy tail cannot make a segment;
- segments are straight lines (level and slope), found by binary segmentation with a BIC penalty of
  `penalty` (3: intercept, slope and location of each new segment) × log n.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DEFAULT_TECHNIQUE = "binseg"


def _as_array(values: Sequence[float]) -> np.ndarray:
    return np.asarray(list(values), dtype=float)


def _present(values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """(finite values, their positions in *values*): None, NaN and infinities are missing."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float) if len(values) else np.zeros(0)
    keep = np.isfinite(arr)
    return arr[keep], np.flatnonzero(keep)


def _pct(before: float, after: float) -> float:
    if before == 0:
        return 0.0 if after == 0 else float("inf")
    return (after - before) / abs(before) * 100.0


def _mad(values: np.ndarray) -> float:
    return float(np.median(np.abs(values - np.median(values))) * 1.4826) if len(values) else 0.0


def _big_enough(arr: np.ndarray, index: int, window: int, min_change_percent: float, lo: int = 0, hi: int | None = None) -> bool:
    """Whether the medians `window` points either side of index differ by at least min_change_percent."""
    hi = len(arr) if hi is None else hi
    before = arr[max(lo, index - window) : index]
    after = arr[index : min(hi, index + window)]
    if not len(before) or not len(after):
        return False
    return abs(_pct(float(np.median(before)), float(np.median(after)))) >= min_change_percent


def noise_scale(arr: np.ndarray) -> float:
    """Robust noise level of a series: MAD of its residuals around its least-squares line.

    Level shifts inflate it less than the series' own spread and a linear trend not at all; unlike the MAD of
    first differences it does not fall to ~0 on a smooth curve (which made every point a change).
    """
    n = len(arr)
    if n < 3:
        return float(np.std(arr)) or 1.0
    t = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(t, arr, 1)
    scale = _mad(arr - (slope * t + intercept))
    return scale or float(np.std(arr)) or 1.0


def _running_median(arr: np.ndarray, width: int = 5) -> np.ndarray:
    half = width // 2
    padded = np.pad(arr, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def robust_scaled(arr: np.ndarray, clip: float = 4.0) -> np.ndarray:
    """The series in noise units around its median, with isolated outliers clipped to `clip` noise levels
    from their running median (edges survive a running median; single spikes do not)."""
    x = (arr - np.median(arr)) / noise_scale(arr)
    if clip and len(x) >= 5:
        local = _running_median(x)
        resid = x - local
        bound = clip * (_mad(resid) or 1.0)
        x = local + np.clip(resid, -bound, bound)
    return x


class _LinearCost:
    """Residual sum of squares of a least-squares line on any [a, b) of a series, O(1) per segment from
    prefix sums (so one split search is O(length) and binary segmentation O(n log n))."""

    def __init__(self, x: np.ndarray) -> None:
        n = len(x)
        t = np.arange(n, dtype=float) / max(n, 1)
        zero = np.zeros(1)
        self.sums = [np.concatenate([zero, np.cumsum(v)]) for v in (np.ones(n), t, t * t, x, t * x, x * x)]

    def error(self, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        n, st, stt, sy, sty, syy = (s[b] - s[a] for s in self.sums)
        mt, my = st / n, sy / n
        ctt, cty, cyy = stt - n * mt * mt, sty - n * mt * my, syy - n * my * my
        safe = np.where(ctt > 1e-12, ctt, 1.0)
        return np.maximum(np.where(ctt > 1e-12, cyy - cty * cty / safe, cyy), 0.0)


def binseg(
    values: Sequence[float],
    penalty: float = 3.0,
    min_size: int = 3,
    clip: float = 4.0,
    min_change_percent: float = 0.0,
) -> list[int]:
    """Default detector: binary segmentation into straight-line segments on the robustly scaled series,
    splitting while a split lowers the squared error by more than `penalty` × log n (BIC).

    The same split points as ruptures' Binseg with its "linear" cost on the same signal (bench/detection_speed.py
    checks it), in O(n log n) instead of one least-squares fit per candidate.
    """
    arr = _as_array(values)
    n = len(arr)
    if n < 2 * min_size:
        return []
    x = robust_scaled(arr, clip)
    cost = _LinearCost(x)
    pen = penalty * np.log(n)
    found: list[int] = []
    todo = [(0, n)]
    while todo:
        a, b = todo.pop()
        if b - a < 2 * min_size:
            continue
        k = np.arange(a + min_size, b - min_size + 1)
        gain = cost.error(a, b) - cost.error(np.full_like(k, a), k) - cost.error(k, np.full_like(k, b))
        best = int(np.argmax(gain))
        if gain[best] > pen:
            split = int(k[best])
            found.append(split)
            todo += [(a, split), (split, b)]
    found.sort()
    if min_change_percent <= 0:
        return found
    edges = [0, *found, n]
    return [b for k, b in enumerate(found)
            if abs(_pct(float(np.median(arr[edges[k]:b])), float(np.median(arr[b:edges[k + 2]])))) >= min_change_percent]


def baseline(
    values: Sequence[float], window: int = 10, threshold_percent: float = 20.0, confirm: int = 3
) -> list[int]:
    """Baseline comparison: a change where `confirm` consecutive values all differ from the median of the
    `window` values before them by at least `threshold_percent` in the same direction.

    After a change the baseline restarts, so one step is reported once.
    """
    arr = _as_array(values)
    out: list[int] = []
    i = window
    start = 0
    while i + confirm <= len(arr):
        base = float(np.median(arr[max(start, i - window) : i]))
        pcts = [_pct(base, float(v)) for v in arr[i : i + confirm]]
        if all(p >= threshold_percent for p in pcts) or all(p <= -threshold_percent for p in pcts):
            out.append(i)
            start = i
            i += window
            continue
        i += 1
    return out


def _welch_t(back: np.ndarray, fore: np.ndarray) -> float:
    vb, vf = back.var(ddof=1) / len(back), fore.var(ddof=1) / len(fore)
    if vb + vf == 0:
        return 0.0 if back[0] == fore[0] else float("inf")
    return abs(float(back.mean() - fore.mean())) / float(np.sqrt(vb + vf))


def ttest(
    values: Sequence[float],
    back_window: int = 12,
    fore_window: int = 12,
    t_threshold: float = 7.0,
    min_change_percent: float = 5.0,
) -> list[int]:
    """Sliding-window Welch t-test (Perfherder style): at each index compare the `back_window` values before
    with the `fore_window` values from it on; report local maxima of |t| above `t_threshold`.
    """
    arr = _as_array(values)
    n = len(arr)
    if n < 4:
        return []
    tvals = np.zeros(n)
    for i in range(2, n - 1):
        back = arr[max(0, i - back_window) : i]
        fore = arr[i : i + fore_window]
        if len(back) < 2 or len(fore) < 2:
            continue
        tvals[i] = _welch_t(back, fore)
    out: list[int] = []
    i = 0
    while i < n:
        if tvals[i] >= t_threshold:
            # take the peak of this run of significant t values: the change is where the split is sharpest
            j = i
            while j + 1 < n and tvals[j + 1] >= t_threshold:
                j += 1
            peak = i + int(np.argmax(tvals[i : j + 1]))
            if _big_enough(arr, peak, max(back_window, fore_window), min_change_percent):
                out.append(peak)
            i = j + 1
        else:
            i += 1
    return out


def _normalized(arr: np.ndarray) -> np.ndarray:
    """Robust z-scores (median / MAD) so one penalty works whatever the unit of the series."""
    med = np.median(arr)
    mad = _mad(arr)
    if mad == 0:
        mad = np.std(arr) or 1.0
    return (arr - med) / mad


def diff_noise_scale(arr: np.ndarray) -> float:
    """Noise level from first differences (MAD / sqrt 2): unaffected by level shifts, but ~0 on smooth trends."""
    diffs = np.diff(arr)
    scale = _mad(diffs) / np.sqrt(2) if len(diffs) else 0.0
    return scale or float(np.std(arr)) or 1.0


def pelt(
    values: Sequence[float],
    penalty: float = 4.0,
    model: str = "l1",
    min_size: int = 4,
    min_change_percent: float = 0.0,
    jump: int = 1,
) -> list[int]:
    """Offline change points by PELT (ruptures) on the series scaled by its first-difference noise level.

    The cost is `model`: "l1" (median shifts), "l2" (mean shifts) or "rbf" (distribution shifts). The penalty
    is `penalty * log(n)` (BIC-like). Changes smaller than `min_change_percent` of the level before are dropped.
    `jump` > 1 considers only every jump-th split (faster, coarser). O(n²) at worst: prefer `binseg` on long
    series.
    """
    import ruptures

    arr = _as_array(values)
    n = len(arr)
    if n < 2 * min_size:
        return []
    signal = ((arr - np.median(arr)) / diff_noise_scale(arr)).reshape(-1, 1)
    algo = ruptures.Pelt(model=model, min_size=min_size, jump=jump).fit(signal)
    bkps = [b for b in algo.predict(pen=penalty * np.log(n)) if b < n]
    out: list[int] = []
    edges = [0, *bkps, n]
    for k, b in enumerate(bkps):
        # compare the whole neighbouring segments, not a fixed window: PELT already found their extent
        before = arr[edges[k] : b]
        after = arr[b : edges[k + 2]]
        if abs(_pct(float(np.median(before)), float(np.median(after)))) >= min_change_percent:
            out.append(int(b))
    return out


def kernel(
    values: Sequence[float], penalty: float = 1.0, min_size: int = 3, min_change_percent: float = 5.0
) -> list[int]:
    """Offline change points by KernelCPD (ruptures, rbf kernel) with a penalty; catches changes of spread as
    well as level."""
    import ruptures

    arr = _as_array(values)
    n = len(arr)
    if n < 2 * min_size:
        return []
    signal = _normalized(arr).reshape(-1, 1)
    algo = ruptures.KernelCPD(kernel="rbf", min_size=min_size).fit(signal)
    bkps = [b for b in algo.predict(pen=penalty * np.log(n)) if b < n]
    return [int(b) for b in bkps if min_change_percent <= 0 or _big_enough(arr, b, max(min_size, 10), min_change_percent)]


def cdf_distance(
    samples: Sequence[Sequence[float]], threshold: float = 0.03, back: int = 3
) -> list[int]:
    """For distribution-valued probes (e.g. one list of memory samples per day): a change at day i when the
    squared difference between day i's empirical CDF and the pooled CDF of the `back` days before it,
    averaged over the pooled support, exceeds `threshold` — and day i+1 agrees (confirms the shift).
    """
    days = [np.sort(np.asarray(list(s), dtype=float)) for s in samples]
    scores = [0.0] * len(days)
    for i in range(1, len(days)):
        ref = np.concatenate(days[max(0, i - back) : i]) if i else np.array([])
        if not len(ref) or not len(days[i]):
            continue
        scores[i] = cdf_score(np.sort(ref), days[i])
    out = []
    for i in range(1, len(days)):
        confirmed = i + 1 >= len(days) or cdf_score(np.sort(np.concatenate(days[max(0, i - back) : i])), days[i + 1]) > threshold
        if scores[i] > threshold and confirmed and (not out or i - out[-1] > back):
            out.append(i)
    return out


def cdf_score(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of the empirical CDFs of two sorted samples over their pooled support (0 … 1)."""
    grid = np.union1d(a, b)
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.mean((fa - fb) ** 2))


def noise_test(before: Sequence[float], after: Sequence[float], alpha: float = 0.01) -> float | None:
    """p-value of a two-sided Mann-Whitney U test between the values before and after a change, or None when
    either side has fewer than 3 values. Rank-based, so a slow outlier build does not make a change look real."""
    from scipy import stats

    b, a = _present(list(before))[0], _present(list(after))[0]
    if len(b) < 3 or len(a) < 3:
        return None
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)


TECHNIQUES: dict[str, Callable[..., list[int]]] = {
    "binseg": binseg,
    "baseline": baseline,
    "ttest": ttest,
    "pelt": pelt,
    "kernel": kernel,
}


#: Techniques over distribution-valued probes: one list of samples per day, not one value per build.
DISTRIBUTION_TECHNIQUES: dict[str, Callable[..., list[int]]] = {"cdf": cdf_distance}


def detect(values: Sequence[float | None], technique: str = DEFAULT_TECHNIQUE, **args: Any) -> list[int]:
    """Change-point indices of *values* by the named technique (binseg, baseline, ttest, pelt, kernel).

    Missing values (None, NaN, infinities) are skipped; each index is the position in *values* of the first
    present value after the change.
    """
    try:
        fn = TECHNIQUES[technique]
    except KeyError:
        raise ValueError(f"unknown technique {technique!r}; expected one of {', '.join(sorted(TECHNIQUES))}") from None
    present, positions = _present(values)
    return [int(positions[i]) for i in fn(present, **args)]
