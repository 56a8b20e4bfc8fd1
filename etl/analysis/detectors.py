"""Change detectors over one numeric series (ordered by build): each returns the indices where a change starts.

Index i means "values[i] is the first value after the change", so values[i - 1] is the last one before it.
Every detector is a plain function of a sequence of floats; `detect(values, technique, **args)` picks one
by name. All of them ignore changes smaller than `min_change_percent` of the level before, because a
statistically certain 0.5 % shift is not worth anyone's time in a CI council.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import ruptures
from scipy import stats

DEFAULT_TECHNIQUE = "pelt"


def _as_array(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    return arr[~np.isnan(arr)] if arr.size else arr


def _pct(before: float, after: float) -> float:
    if before == 0:
        return 0.0 if after == 0 else float("inf")
    return (after - before) / abs(before) * 100.0


def _big_enough(arr: np.ndarray, index: int, window: int, min_change_percent: float, lo: int = 0, hi: int | None = None) -> bool:
    """Whether the medians `window` points either side of index differ by at least min_change_percent."""
    hi = len(arr) if hi is None else hi
    before = arr[max(lo, index - window) : index]
    after = arr[index : min(hi, index + window)]
    if not len(before) or not len(after):
        return False
    return abs(_pct(float(np.median(before)), float(np.median(after)))) >= min_change_percent


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
        if np.std(back) == 0 and np.std(fore) == 0:
            tvals[i] = 0.0 if back[0] == fore[0] else np.inf
            continue
        t = stats.ttest_ind(back, fore, equal_var=False).statistic
        tvals[i] = abs(float(t)) if np.isfinite(t) else np.inf
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
    mad = np.median(np.abs(arr - med)) * 1.4826
    if mad == 0:
        mad = np.std(arr) or 1.0
    return (arr - med) / mad


def _noise_scale(arr: np.ndarray) -> float:
    """Noise level from first differences (MAD / sqrt 2): unaffected by level shifts, unlike the series' own MAD."""
    diffs = np.diff(arr)
    scale = float(np.median(np.abs(diffs - np.median(diffs))) * 1.4826 / np.sqrt(2)) if len(diffs) else 0.0
    if scale == 0:
        scale = float(np.std(arr)) or 1.0
    return scale


def pelt(
    values: Sequence[float],
    penalty: float = 4.0,
    model: str = "l1",
    min_size: int = 4,
    min_change_percent: float = 0.0,
) -> list[int]:
    """Offline change points by PELT (ruptures) on the series scaled by its noise level.

    The cost is `model`: "l1" (median shifts; the default, because CI timings have outliers — a build on a
    slow agent — that an "l2" cost turns into short spurious segments), "l2" (mean shifts) or "rbf"
    (distribution shifts). The penalty is `penalty * log(n)` (BIC-like), so longer series need stronger
    evidence per change. Changes smaller than `min_change_percent` of the level before are dropped.
    """
    arr = _as_array(values)
    n = len(arr)
    if n < 2 * min_size:
        return []
    signal = ((arr - np.median(arr)) / _noise_scale(arr)).reshape(-1, 1)
    algo = ruptures.Pelt(model=model, min_size=min_size, jump=1).fit(signal)
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
    """Offline change points by KernelCPD (rbf kernel) with a penalty; catches changes of spread as well as level."""
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


TECHNIQUES: dict[str, Callable[..., list[int]]] = {
    "baseline": baseline,
    "ttest": ttest,
    "pelt": pelt,
    "kernel": kernel,
}


#: Techniques over distribution-valued probes: one list of samples per day, not one value per build.
DISTRIBUTION_TECHNIQUES: dict[str, Callable[..., list[int]]] = {"cdf": cdf_distance}


def detect(values: Sequence[float], technique: str = DEFAULT_TECHNIQUE, **args: Any) -> list[int]:
    """Change-point indices of *values* by the named technique (baseline, ttest, pelt, kernel)."""
    try:
        fn = TECHNIQUES[technique]
    except KeyError:
        raise ValueError(f"unknown technique {technique!r}; expected one of {', '.join(sorted(TECHNIQUES))}") from None
    return fn(values, **args)
