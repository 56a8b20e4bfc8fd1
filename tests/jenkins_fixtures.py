"""The simulated Jenkins controller's test setup shared by tests/run/test_etl_jenkins*.py: its size, the
config of a Jenkins source against it, and the store's contents as comparable frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from etl.config import Settings
from etl.schema import table
from etl.simulator.jenkins import JenkinsServer
from etl.warehouse.local import LocalWarehouse
from tests.conftest import store_settings

SIM = {"seed": 11, "days": 3, "builds_per_day": 6}
FACTS = ("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults", "BuildMetrics",
         "BuildStages", "MetricSamples")


def set_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token and pseudonymization key the config names (env://)."""
    monkeypatch.setenv("JENKINS_TEST_TOKEN", "11aa22bb33cc44dd55ee66ff77aa88bb99")
    monkeypatch.setenv("JENKINS_TEST_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")


def make(write_config: Callable[..., Path], server: JenkinsServer, name: str, **source: Any) -> Settings:
    """Settings of one Jenkins source on *server*, its store and staging named *name* (config/<name>.yaml)."""
    cfg = {"kind": "jenkins", "name": "ci", "url": server.url, "user": server.user,
           "token": "env://JENKINS_TEST_TOKEN", "organization": "jenkins-test", "batch_size": 7,
           "backoff_seconds": 0, "max_backoff_seconds": 0, "initial_lookback_days": 10, **source}
    return store_settings(write_config, [cfg], name, "JENKINS_TEST_PSEUDONYM_KEY")


def contents(settings: Settings) -> dict[str, pd.DataFrame]:
    """Every fact table and the watermarks, without write-time columns, sorted by key."""
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        out = {}
        for name in (*FACTS, "EtlWatermarks"):
            frame = wh.con.execute(f'SELECT * FROM "{name}"').df()
            frame = frame.drop(columns=["IngestedAt", *(("UpdatedAt", "RunId") if name == "EtlWatermarks" else ())])
            out[name] = frame.sort_values(list(table(name).key)).reset_index(drop=True)
        return out
    finally:
        wh.close()


def counts(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Rows per fact table of *frames* (as `contents` returns them)."""
    return {name: len(frame) for name, frame in frames.items() if name in FACTS}
