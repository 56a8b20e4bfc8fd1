"""The outbox's own rules: deterministic batch ids, manifest-last commits, typed Parquet staging,
chunked reads, pruning."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.stage import outbox as outbox_module
from etl.stage.outbox import Manifest, Outbox, StagedFileError, batch_id_for
from etl.stage.quarantine import Quarantine
from etl.warehouse.rows import RowError

KEY = {"Organization": "org", "Project": "proj"}


def manifest(batch_id: str, to: str = "2026-11-01T06:00:00") -> Manifest:
    return Manifest(batch_id, "ado", "org", "proj", "2026-11-01T00:00:00", to, "2026-11-23T06:00:00")


def test_batch_id_is_the_same_for_the_same_window() -> None:
    a = batch_id_for("ado", "org", "proj", "2026-11-01T00:00:00", "2026-11-01T06:00:00")
    b = batch_id_for("ado", "org", "proj", "2026-11-01T00:00:00", "2026-11-01T06:00:00")
    c = batch_id_for("ado", "org", "proj", "2026-11-01T00:00:00", "2026-11-01T07:00:00")
    assert a == b != c
    assert a.startswith("20261101T060000-")


def test_a_batch_without_manifest_is_not_listed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TimelineBuilds", [{**KEY, "BuildId": 1}])
    assert outbox.batches() == []
    staged.commit("pending")
    assert [(m.batch_id, m.status, m.counts) for m in outbox.batches()] == [("b1", "pending", {"TimelineBuilds": 1})]


def test_rows_are_read_back_in_bounded_chunks(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TestResults", [{**KEY, "RunId": 7, "ResultId": i} for i in range(5)])
    staged.commit("pending")
    assert [len(c) for c in outbox.rows("b1", "TestResults", chunk=2)] == [2, 2, 1]


def test_staged_rows_read_back_with_their_exact_typed_values(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TimelineBuilds", [
        # A typed datetime (aware: stored as UTC), ISO-8601 text with Azure DevOps' 7 digits, a naive one, nulls.
        {**KEY, "BuildId": 1, "QueueTime": datetime(2026, 11, 1, 8, 30, tzinfo=timezone(timedelta(hours=2))),
         "StartTime": "2026-11-01T06:31:00.1234567Z", "FinishTime": datetime(2026, 11, 1, 7, 0, 0, 5),
         "Tags": ["ci", "nightly"], "Attempts": 2, "DurationSeconds": 1740.5, "Result": None},
        {**KEY, "BuildId": 2, "QueueTime": None, "StartTime": "", "Tags": None},
    ])
    staged.commit("pending")
    rows = [r for chunk in outbox.rows("b1", "TimelineBuilds") for r in chunk]
    picked = [{k: r[k] for k in ("BuildId", "QueueTime", "StartTime", "FinishTime", "Tags", "Attempts",
                                 "DurationSeconds", "Result")} for r in rows]
    assert picked == [
        {"BuildId": 1, "QueueTime": datetime(2026, 11, 1, 6, 30), "StartTime": datetime(2026, 11, 1, 6, 31, 0, 123456),
         "FinishTime": datetime(2026, 11, 1, 7, 0, 0, 5), "Tags": '["ci", "nightly"]', "Attempts": 2,
         "DurationSeconds": 1740.5, "Result": None},
        {"BuildId": 2, "QueueTime": None, "StartTime": None, "FinishTime": None, "Tags": None, "Attempts": None,
         "DurationSeconds": None, "Result": None},
    ]
    table = next(outbox.tables("b1", "TimelineBuilds"))
    assert (str(table.schema.field("QueueTime").type), str(table.schema.field("BuildId").type)) == \
        ("timestamp[us]", "int64")


def test_staged_rows_are_the_rows_after_the_privacy_policy(tmp_path: Path) -> None:
    def policy(table: str, rows: list[dict]) -> list[dict]:
        return [{**r, "RequestedFor": "<person>"} for r in rows]

    outbox = Outbox(tmp_path, rows_policy=policy)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TimelineBuilds", [{**KEY, "BuildId": 1, "RequestedFor": "Jane Doe"}])
    staged.commit("pending")
    assert [r["RequestedFor"] for chunk in outbox.rows("b1", "TimelineBuilds") for r in chunk] == ["<person>"]
    assert b"Jane Doe" not in (tmp_path / "outbox" / "b1" / "TimelineBuilds.parquet").read_bytes()


def test_staged_text_stays_greppable_in_the_parquet_file(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TimelineBuilds", [{**KEY, "BuildId": 1, "SourceBranch": "refs/heads/feature-x"}])
    staged.commit("pending")
    assert b"refs/heads/feature-x" in (tmp_path / "outbox" / "b1" / "TimelineBuilds.parquet").read_bytes()


def test_an_item_with_a_value_that_does_not_fit_its_column_stages_nothing(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_item({"id": 1}, {"TimelineBuilds": [{**KEY, "BuildId": 1}]})
    with pytest.raises(RowError, match=r"^TimelineBuilds \{'Organization': 'org', 'Project': 'proj', 'BuildId': 2\}: "
                                       r"column Attempts: "):
        staged.add_item({"id": 2}, {"TimelineBuilds": [{**KEY, "BuildId": 2, "Attempts": "two"}],
                                    "TimelineRecords": [{**KEY, "BuildId": 2, "RecordId": "r", "Attempt": 1}]})
    staged.commit("pending")
    assert [r["BuildId"] for chunk in outbox.rows("b1", "TimelineBuilds") for r in chunk] == [1]
    assert list(outbox.rows("b1", "TimelineRecords")) == []
    assert (tmp_path / "outbox" / "b1" / "raw.jsonl").read_text() == '{"id":1}\n'
    assert outbox.get("b1").counts == {"TimelineBuilds": 1}


def test_rows_are_written_in_row_groups_of_bounded_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "ROW_GROUP_ROWS", 4)
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    for i in range(5):
        staged.add_item(None, {"TestResults": [{**KEY, "RunId": 7, "ResultId": 2 * i + j} for j in range(2)]})
    staged.commit("pending")
    parquet = pq.ParquetFile(tmp_path / "outbox" / "b1" / "TestResults.parquet")
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [4, 4, 2]
    assert [r["ResultId"] for chunk in outbox.rows("b1", "TestResults") for r in chunk] == list(range(10))


def test_a_garbled_staged_file_is_a_staged_file_error_naming_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TimelineBuilds", [{**KEY, "BuildId": 1}])
    staged.commit("pending")
    (tmp_path / "outbox" / "b1" / "TimelineBuilds.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(StagedFileError, match=r"^staged file b1/TimelineBuilds.parquet: not a readable Parquet file"):
        list(outbox.tables("b1", "TimelineBuilds"))


def test_restaging_the_same_rows_writes_identical_bytes(tmp_path: Path) -> None:
    def stage(root: Path) -> bytes:
        staged = Outbox(root).start(manifest("b1"))
        staged.add_rows("TimelineBuilds", [{**KEY, "BuildId": 1, "QueueTime": datetime(2026, 11, 1, tzinfo=UTC)}])
        staged.commit("pending")
        return (root / "outbox" / "b1" / "TimelineBuilds.parquet").read_bytes()

    assert stage(tmp_path / "a") == stage(tmp_path / "b")


def test_prune_keeps_the_newest_loaded_batches(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    for i in range(3):
        outbox.start(manifest(f"b{i}", to=f"2026-11-0{i + 1}T00:00:00")).commit("loaded")
    outbox.start(manifest("held", to="2026-11-01T00:00:00")).commit("held")
    assert outbox.prune(1) == ["b0", "b1"]
    assert sorted(m.batch_id for m in outbox.batches()) == ["b2", "held"]


def test_quarantine_keeps_reason_source_object_field_and_scrubbed_payload(tmp_path: Path) -> None:
    def scrub(value: object) -> object:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        return value.replace("a@b.c", "<email>") if isinstance(value, str) else value

    lines: list[str] = []
    q = Quarantine(tmp_path, scrub=scrub, report=lines.append)
    path = q.add("ado", "build 123 timeline record r1", "startTime", "invalid datetime 'a@b.c'", {"who": "a@b.c"})
    assert json.loads(path.read_text()) == {"reason": "invalid datetime '<email>'", "source": "ado",
                                            "object": "build 123 timeline record r1", "field": "startTime",
                                            "payload": {"who": "<email>"}}
    assert lines == ["ado build 123 timeline record r1: field startTime: invalid datetime '<email>'"]
    assert path.parent == tmp_path / "quarantine" / "ado"
