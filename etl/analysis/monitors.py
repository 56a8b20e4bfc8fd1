"""`config/monitors.yaml`: which metrics regression detection watches and how (validated; unknown keys are errors)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etl.analysis.detectors import DISTRIBUTION_TECHNIQUES, TECHNIQUES
from etl.yamlfile import read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Monitor(_Strict):
    """One watched metric: a MetricSamples.Metric name or glob pattern, or `build_duration_seconds` (TimelineBuilds)."""

    metric: str
    direction: Literal["lower_is_better", "higher_is_better"] | None = Field(
        default=None, description="Which way is worse; without one a change is a `change`, never a regression.")
    lower_is_better: bool | None = Field(default=None, description="Shorthand: true = direction lower_is_better, false = higher_is_better.")
    technique: str | None = Field(default=None, description="binseg, baseline, ttest, pelt, kernel, or cdf (daily sample distributions); default: defaults.technique")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the technique.")
    platforms: list[str] = Field(default_factory=list, description="Only these platforms (empty: all).")
    mode: Literal["alert", "monitor"] = Field(default="alert", description="alert: write Alerts rows; monitor: chart only.")
    min_points: int | None = Field(default=None, ge=4)

    @model_validator(mode="after")
    def _one_direction(self) -> Monitor:
        if self.direction and self.lower_is_better is not None and self.lower_is_better != (self.direction == "lower_is_better"):
            raise ValueError(f"monitor {self.metric!r}: lower_is_better contradicts direction {self.direction!r}")
        return self

    @property
    def declared_direction(self) -> str | None:
        """lower_is_better, higher_is_better, or None when the file declares neither."""
        if self.direction:
            return self.direction
        if self.lower_is_better is None:
            return None
        return "lower_is_better" if self.lower_is_better else "higher_is_better"


class Defaults(_Strict):
    technique: str = "binseg"
    args: dict[str, Any] = Field(default_factory=dict)
    min_points: int = Field(default=20, ge=4)
    noise_alpha: float = Field(default=0.01, gt=0, le=1, description="A change is recorded only when a Mann-Whitney U "
                               "test of the values either side of it gives p below this (the noise test).")
    noise_window: int = Field(default=20, ge=3, description="Values either side of a change the noise test and Before/After use.")


class Monitors(_Strict):
    """The whole file."""

    defaults: Defaults = Field(default_factory=Defaults)
    monitors: list[Monitor] = Field(default_factory=list)
    notify: dict[str, Any] = Field(default_factory=dict, description="Where alerts go (tracker, webhook); validated by etl.alerting.config.")

    @model_validator(mode="after")
    def _known_techniques(self) -> Monitors:
        known = {*TECHNIQUES, *DISTRIBUTION_TECHNIQUES}
        if self.defaults.technique not in TECHNIQUES:
            raise ValueError(f"unknown default technique {self.defaults.technique!r}; expected one of {', '.join(sorted(TECHNIQUES))}")
        for name in (m.technique for m in self.monitors if m.technique):
            if name not in known:
                raise ValueError(f"unknown technique {name!r}; expected one of {', '.join(sorted(known))}")
        return self

    def technique(self, monitor: Monitor) -> tuple[str, dict[str, Any]]:
        """The technique and its arguments for *monitor* (defaults' args apply only to the default technique)."""
        if monitor.technique and monitor.technique != self.defaults.technique:
            return monitor.technique, dict(monitor.args)
        return self.defaults.technique, {**self.defaults.args, **monitor.args}

    def get(self, metric: str) -> Monitor | None:
        """The monitor of *metric*: an exact name first, else the first glob pattern that matches it
        (e.g. `stage_duration_seconds:*` for every stage)."""
        exact = next((m for m in self.monitors if m.metric == metric), None)
        return exact or next((m for m in self.monitors if fnmatchcase(metric, m.metric)), None)


def load_monitors(path: Path | str) -> Monitors:
    """Read and validate monitors.yaml; ValueError names the file and each bad field in one line."""
    path = Path(path)
    raw = read_yaml(path, ValueError) or {}
    try:
        return Monitors.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
            + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        )
        raise ValueError(f"{path}: {problems}") from None
