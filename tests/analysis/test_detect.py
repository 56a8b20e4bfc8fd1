"""Change detectors on synthetic steps, and `ci-telemetry detect` over stdin/stdout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from etl.analysis import detectors
from etl.cli import app


def step(n: int = 60, at: int = 30, size: float = 30.0, noise: float = 2.0, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = 100 + rng.normal(0, noise, n)
    values[at:] += size
    return values


@pytest.mark.parametrize("technique", ["pelt", "ttest", "kernel", "baseline"])
def test_a_30_percent_step_is_found_at_its_build(technique: str) -> None:
    assert detectors.detect(step(), technique) == [30]


@pytest.mark.parametrize("technique", ["pelt", "ttest", "kernel", "baseline"])
def test_a_flat_noisy_series_has_no_change(technique: str) -> None:
    assert detectors.detect(step(size=0.0), technique) == []


def test_baseline_ignores_a_step_below_its_threshold() -> None:
    assert detectors.baseline(step(size=10.0, noise=0.5), threshold_percent=20.0) == []
    assert detectors.baseline(step(size=10.0, noise=0.5), threshold_percent=5.0) == [30]


def test_ttest_ignores_a_significant_step_smaller_than_min_change_percent() -> None:
    series = step(size=3.0, noise=0.1)
    assert detectors.ttest(series, min_change_percent=5.0) == []
    assert detectors.ttest(series, min_change_percent=1.0) == [30]


def test_cdf_distance_flags_the_first_day_of_a_shifted_distribution() -> None:
    rng = np.random.default_rng(1)
    days = [rng.normal(0, 1, 60) for _ in range(6)] + [rng.normal(1.5, 1, 60) for _ in range(6)]
    assert detectors.cdf_distance(days) == [6]


def test_cdf_score_of_identical_samples_is_zero_and_of_disjoint_ones_positive() -> None:
    a = np.array([1.0, 2.0, 3.0])
    assert detectors.cdf_score(a, a) == 0.0
    # CDF gaps over the pooled grid 1,2,3,11,12,13: 1/3, 2/3, 1, 2/3, 1/3, 0 → mean of squares 19/54
    assert detectors.cdf_score(a, a + 10) == pytest.approx(19 / 54)


def test_unknown_technique_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown technique 'magic'"):
        detectors.detect([1.0, 2.0], "magic")


def test_detect_command_prints_indices_as_json() -> None:
    values = [10.0] * 12 + [20.0] * 12
    out = CliRunner().invoke(app, ["detect"], input=json.dumps(values))
    assert out.exit_code == 0
    assert json.loads(out.stdout) == [12]


def test_detect_command_with_technique_option() -> None:
    out = CliRunner().invoke(app, ["detect", "--technique", "ttest"], input=json.dumps(step().tolist()))
    assert json.loads(out.stdout) == [30]


def test_detect_command_rejects_non_numeric_input_with_one_line() -> None:
    out = CliRunner().invoke(app, ["detect"], input='[1, "x"]')
    assert out.exit_code == 2
    assert out.stderr.strip() == "error: stdin: expected a JSON list of numbers or null, e.g. [1, 2.5, null, 3]"


def test_detect_command_accepts_nulls_and_counts_indices_in_the_list_as_given() -> None:
    values: list[float | None] = [10.0] * 12 + [20.0] * 12
    values[5] = values[15] = None
    out = CliRunner().invoke(app, ["detect"], input=json.dumps(values))
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout) == [12]


def test_a_missing_value_just_before_a_change_moves_it_to_the_next_present_value() -> None:
    values: list[float | None] = [10.0] * 12 + [20.0] * 12
    values[12] = None
    assert detectors.detect(values) == [13]


@pytest.mark.parametrize("technique", ["binseg", "pelt", "ttest", "kernel", "baseline"])
def test_every_technique_skips_nan_and_infinity(technique: str) -> None:
    values = step().tolist()
    values[10], values[40] = float("nan"), float("inf")
    assert detectors.detect(values, technique) == [30]


def test_default_detector_is_invariant_to_unit_and_offset() -> None:
    series = step(n=120, at=70, size=8.0, noise=2.0) + np.linspace(0, 10, 120)
    assert detectors.detect(series) == detectors.detect(series * 1e-6 + 3e9) == [70]


def test_default_detector_sees_no_change_in_a_smooth_curve() -> None:
    # a population-like logistic curve with small noise: the old difference-based scale cut it into ~every point
    t = np.linspace(-6, 6, 200)
    curve = 1e6 / (1 + np.exp(-t)) + np.random.default_rng(4).normal(0, 1e3, 200)
    assert len(detectors.detect(curve)) <= 4


def test_default_detector_ignores_single_slow_builds() -> None:
    series = step(size=0.0, n=120)
    series[[20, 55, 90]] *= 3
    assert detectors.detect(series) == []


def test_binseg_matches_ruptures_binseg_with_the_linear_cost() -> None:
    import ruptures

    series = step(n=150, at=60, size=12.0, noise=3.0)
    x = detectors.robust_scaled(series)
    signal = np.column_stack([x, np.arange(150) / 150, np.ones(150)])
    expected = ruptures.Binseg(model="linear", min_size=3, jump=1).fit(signal).predict(pen=3 * np.log(150))[:-1]
    assert detectors.binseg(series) == expected


def test_benchmark_metrics_follow_the_tcpd_definitions() -> None:
    from bench import changepoint_benchmark as cb

    # the examples TCPDBench's own metrics module documents
    assert cb.true_positives({1, 10, 20, 23}, {3, 8, 20}) == {1, 10, 20}
    assert cb.true_positives({1, 10, 20, 23}, {1, 3, 5, 8, 20}) == {1, 10, 20}
    # precision over the union of annotators (0 and 10 of 0, 10, 40), recall averaged over annotators (2/3, 2/2)
    assert cb.f_measure({"a": [10, 20], "b": [10]}, [10, 40]) == pytest.approx(20 / 27)
    assert cb.f_measure({"a": []}, []) == 1.0
    assert cb.covering({"a": [5]}, [5], 10) == 1.0
    assert cb.covering({"a": []}, [5], 10) == pytest.approx(0.5)


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000, "error: stdin: JSON nested too deeply; expected a flat list of numbers"),
    ("[1, " + "9" * 400 + "]", "error: stdin: a number is too large for a float"),
])
def test_detect_command_rejects_hostile_input_with_one_line(text: str, message: str) -> None:
    out = CliRunner().invoke(app, ["detect"], input=text)
    assert (out.exit_code, out.stderr.strip()) == (2, message)


def test_detect_command_treats_an_overflowing_float_literal_as_missing() -> None:
    out = CliRunner().invoke(app, ["detect"], input="[" + ", ".join(["10"] * 12 + ["1e400"] + ["20"] * 12) + "]")
    assert json.loads(out.stdout) == [13]
