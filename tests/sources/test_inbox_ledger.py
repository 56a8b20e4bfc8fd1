"""The inbox remembers files by the hash of their content, not by their modification time."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from etl.config import Settings, load_config
from etl.run import run_etl
from tests.conftest import store_rows as sql


def doc(key: str, seconds: float) -> dict[str, Any]:
    return {"key": key, "source": "github", "build_session": {"end_time": "2026-11-01T00:00:00Z",
                                                               "duration_seconds": seconds, "os_info": "Linux"}}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def settings(write_config: Callable[..., Path], inbox: Path) -> Settings:
    return load_config(write_config({"sources": [{"kind": "inbox", "name": "uploads", "path": "inbox"}],
                                     "warehouse": {"kind": "local", "path": "data/wh.duckdb"},
                                     "staging": {"dir": "data/staging"}}))


def durations(settings: Settings) -> list[tuple]:
    return sql(settings, 'SELECT "Key", "DurationSeconds" FROM "BuildMetrics" ORDER BY 1')


def ledger(settings: Settings) -> list[tuple]:
    return sql(settings, 'SELECT "Source", "FileName", "Bytes" FROM "EtlInboxFiles" ORDER BY 2, 3')


def write(path: Path, body: Any) -> Path:
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def test_files_with_a_future_and_an_old_mtime_both_load(settings: Settings, inbox: Path) -> None:
    run_etl(settings)  # a first run: the inbox is empty
    future = write(inbox / "future.json", doc("k/future", 1))
    old = write(inbox / "old.json", doc("k/old", 2))
    os.utime(future, (4_102_444_800, 4_102_444_800))  # 2100-01-01
    os.utime(old, (946_684_800, 946_684_800))  # 2000-01-01, as `cp -p` of an old file keeps it
    summary = run_etl(settings)
    assert not summary.failed
    assert durations(settings) == [("k/future", 1.0), ("k/old", 2.0)]
    late = write(inbox / "late.json", doc("k/late", 3))
    os.utime(late, (978_307_200, 978_307_200))  # older than every file already read
    run_etl(settings)
    assert durations(settings) == [("k/future", 1.0), ("k/late", 3.0), ("k/old", 2.0)]


def test_a_file_already_read_is_not_read_again_under_any_name(settings: Settings, inbox: Path) -> None:
    body = doc("k/1", 1)
    write(inbox / "a.json", body)
    run_etl(settings)
    write(inbox / "copy-of-a.json", body)
    second = run_etl(settings)
    assert [str(o.status) for o in second.outcomes] == ["no new data"]
    assert ledger(settings) == [("uploads", "a.json", len(json.dumps(body)))]


def test_rewriting_a_file_with_new_content_loads_a_new_version(settings: Settings, inbox: Path) -> None:
    path = write(inbox / "run.json", doc("k/run", 10))
    run_etl(settings)
    stat = path.stat()
    write(path, doc("k/run", 12))
    os.utime(path, (stat.st_atime, stat.st_mtime))  # same name, same mtime, new content
    run_etl(settings)
    assert durations(settings) == [("k/run", 12.0)]  # the table's key (Source, Key) replaces the old row
    assert [r[1] for r in ledger(settings)] == ["run.json", "run.json"]


def test_a_symlink_is_refused_and_quarantined_not_followed(settings: Settings, inbox: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "secret.json", doc("k/outside", 99))
    (inbox / "link.json").symlink_to(outside)
    write(inbox / "ok.json", doc("k/ok", 1))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert lines == ["uploads inbox file link.json: field (file): is a symbolic link; inbox files must be regular "
                     "files (refused, not followed)"]
    assert durations(settings) == [("k/ok", 1.0)]
    quarantined = list((settings.path(settings.staging.dir) / "quarantine" / "uploads").glob("*.json"))
    assert [json.loads(p.read_text())["payload"] for p in quarantined] == [None]
    assert summary.quarantined == 1
    # A refused file stays out of the ledger: every run reports it until it is removed; the good one is not re-read.
    again: list[str] = []
    run_etl(settings, on_error=again.append)
    assert again == lines
    assert ledger(settings) == [("uploads", "ok.json", len(json.dumps(doc("k/ok", 1))))]


def test_a_document_nested_past_the_recursion_limit_is_quarantined_and_the_others_load(
        settings: Settings, inbox: Path) -> None:
    (inbox / "deep.json").write_text('{"key": "k/deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    write(inbox / "ok.json", doc("k/ok", 1))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert lines == ["uploads inbox file deep.json: field (document): nesting depth 100001 exceeds max_depth 32"]
    assert durations(settings) == [("k/ok", 1.0)]
    assert not summary.failed
