"""Hostile uploads end to end: each poison document beside a good one, a healthy Azure DevOps source beside both.

The good document and the healthy source load completely; each bad item is quarantined with its
one-line reason (a whole document only when it cannot be read; otherwise just the bad value); a
second run does the same, without a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ado_fixtures import synthetic_organization

from etl.config import PROJECT_ROOT, Settings, load_config
from etl.run import run_etl
from etl.simulator.handbuilt import HandBuiltServer, serve_organization
from etl.warehouse.local import LocalWarehouse
from tests.conftest import SAMPLES, table_counts

TABLES = ("TimelineBuilds", "TestResults", "BuildMetrics", "BuildStages", "MetricSamples")
FORMAT_DOC = json.loads((SAMPLES / "build-telemetry" / "telemetry-data" / "metrics.json").read_text(encoding="utf-8"))
MTIME = 1_764_000_000  # every file the same age, so each run reads them all (the inbox reads mtime >= watermark)


def with_value(key: str, section: str, name: str, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(FORMAT_DOC))
    doc[section][name] = value
    return {"key": key, **doc}


#: file name -> its bytes. Poison: depth, 1e300 into a long column, NaN, negative bytes, oversized, garbled,
#: not an object, an unpaired surrogate.
INBOX: dict[str, bytes] = {
    "good.json": json.dumps({"key": "good", **FORMAT_DOC}).encode(),
    "deep.json": b'{"key": "deep", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "huge-number.json": json.dumps(with_value("huge", "network_metrics", "bytes_downloaded", 1e300)).encode(),
    "nan.json": json.dumps(with_value("nan", "memory_metrics", "peak_usage_mb", float("nan"))).encode(),
    "negative.json": json.dumps(with_value("negative", "network_metrics", "bytes_uploaded", -1)).encode(),
    "oversized.json": json.dumps({"key": "big", "pad": "x" * 30_000}).encode(),
    "garbled.json": b'{"key": "garbled", "build_session": {',
    "list.json": b"[1, 2, 3]",
    "surrogate.json": b'{"key": "s", "build_session": {"hostname": "\\ud800"}}',
}
INBOX_LINES = [
    "inbox inbox file deep.json: field (document): nesting depth 1001 exceeds max_depth 32",
    "inbox inbox file garbled.json: field (document): not valid JSON: Expecting property name enclosed in double "
    "quotes: line 1 column 38 (char 37)",
    "inbox inbox file huge-number.json: field network_metrics.bytes_downloaded: 1e+300 is outside the range of a "
    "Kusto long",
    "inbox inbox file list.json: field (document): expected a JSON object",
    "inbox inbox file nan.json: field memory_metrics.peak_usage_mb: nan is not a finite number",
    "inbox inbox file negative.json: field network_metrics.bytes_uploaded: -1 is negative; bytes cannot be",
    "inbox inbox file oversized.json: field (document): 30025 bytes exceeds max_document_bytes 20000",
    "inbox inbox file surrogate.json: field (document): not valid Unicode: an unpaired surrogate '\\ud800' in a "
    "string (I-JSON, RFC 7493)",
]


@pytest.fixture
def ado() -> Iterator[tuple[HandBuiltServer, dict[str, int], int]]:
    org, counts = synthetic_organization(builds=3)
    bid = min(b for b, _ in org.artifacts)
    data = bytearray(org.artifacts[(bid, "telemetry")])
    at = data.index(b'"hostname"')
    data[at + 1:at + 2] = b"H"  # the stored entry no longer matches its CRC
    org.artifacts[(bid, "telemetry")] = bytes(data)
    with serve_organization(org) as srv:
        yield srv, counts, bid


@pytest.fixture
def settings(ado: Any, tmp_path: Path, write_config: Callable[..., Path]) -> Settings:
    srv, _, _ = ado
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, data in INBOX.items():
        (inbox / name).write_bytes(data)
        os.utime(inbox / name, (MTIME, MTIME))
    return load_config(write_config({
        "sources": [
            {"kind": "azure_devops", "name": "ado", "organization_url": srv.url, "projects": ["alpha"], "auth": "none",
             "page_size": 2, "max_retries": 1, "backoff_seconds": 0, "max_backoff_seconds": 0,
             "initial_lookback_days": 3650},
            {"kind": "inbox", "name": "inbox", "path": "inbox", "max_document_bytes": 20_000},
        ],
        "warehouse": {"kind": "local", "path": "data/wh.duckdb"}, "staging": {"dir": "data/staging"},
        "classification": {"rules": str(PROJECT_ROOT / "config" / "failure-rules.yaml")},
    }))


def stored(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return [tuple(r) for r in wh.execute_sql(sql)]
    finally:
        wh.close()


def test_poison_uploads_are_quarantined_with_reasons_and_everything_else_loads_twice(ado: Any,
                                                                                     settings: Settings) -> None:
    _, expected, bid = ado
    first: list[str] = []
    summary = run_etl(settings, on_error=first.append)
    assert not summary.failed
    assert sorted(line for line in first if line.startswith("inbox ")) == INBOX_LINES
    assert [line for line in first if line.startswith("ado ")] == [
        f"ado build {bid} artifact telemetry metrics.json: field (document): corrupt entry: "
        "Bad CRC-32 for file 'telemetry/metrics.json'"]
    inbox_rows = {"BuildMetrics": 4, "BuildStages": 4 * 3, "MetricSamples": 4 * 11 - 3}  # huge, nan, negative: one figure each
    assert table_counts(settings, TABLES) == {
        t: expected[t] + inbox_rows.get(t, 0) - {"BuildMetrics": 1, "BuildStages": 2, "MetricSamples": 10}.get(t, 0)
        for t in TABLES}
    assert stored(settings, "SELECT Key, BytesDownloaded, BytesUploaded, PeakMemoryMb FROM BuildMetrics "
                            "WHERE Source = 'inbox' ORDER BY Key") == [
        ("good", 52428800, 1048576, 2048.0), ("huge", None, 1048576, 2048.0), ("nan", 52428800, 1048576, None),
        ("negative", 52428800, None, 2048.0)]
    assert stored(settings, "SELECT Quarantined FROM EtlRuns WHERE Source = 'inbox'") == [(8,)]

    second: list[str] = []
    summary = run_etl(settings, on_error=second.append)
    assert not summary.failed
    # The inbox ledger remembers the documents that loaded (their dropped values are not reported again);
    # the documents rejected whole are read, and reported, again.
    assert sorted(second) == [line for line in INBOX_LINES if "field (document)" in line]
    assert stored(settings, "SELECT count(*) FROM BuildMetrics WHERE Source = 'inbox'") == [(4,)]
