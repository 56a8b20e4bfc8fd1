"""The local store's ingest: Arrow into a staging table, then one set-based upsert by the table's key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from etl.config import Settings
from etl.schema import load_tables
from etl.warehouse import connected
from etl.warehouse.base import WarehouseError
from etl.warehouse.local import LocalWarehouse, _create_sql

T = datetime(2026, 11, 1, 6, 0)


def record(build: int, record_id: str, result: str, attempt: int = 1) -> dict:
    return {"Organization": "org", "Project": "p", "BuildId": build, "RecordId": record_id, "Attempt": attempt,
            "Result": result, "StartTime": T, "IngestedAt": T}


def stored(wh: LocalWarehouse) -> list[tuple]:
    return wh.execute_sql('SELECT "BuildId", "RecordId", "Attempt", "Result" FROM "TimelineRecords" ORDER BY ALL')


def test_reingesting_rows_replaces_them_by_key_and_keeps_the_others(warehouse: LocalWarehouse) -> None:
    warehouse.ingest("TimelineRecords", [record(1, "a", "failed"), record(1, "b", "succeeded"),
                                         record(2, "a", "succeeded")], "b1")
    assert warehouse.ingest("TimelineRecords", [record(1, "a", "succeeded"), record(1, "a", "failed", attempt=2),
                                                record(3, "c", "canceled")], "b2") == 3
    assert stored(warehouse) == [(1, "a", 1, "succeeded"), (1, "a", 2, "failed"), (1, "b", 1, "succeeded"),
                                 (2, "a", 1, "succeeded"), (3, "c", 1, "canceled")]


def test_a_key_twice_in_one_batch_keeps_its_last_row(warehouse: LocalWarehouse) -> None:
    assert warehouse.ingest("TimelineRecords", [record(1, "a", "failed"), record(1, "b", "failed"),
                                                record(1, "a", "succeeded")], "b1") == 2
    assert stored(warehouse) == [(1, "a", 1, "succeeded"), (1, "b", 1, "failed")]


def test_an_arrow_table_ingests_column_wise_with_its_types_converted(warehouse: LocalWarehouse) -> None:
    data = pa.table({
        "Organization": ["org", "org"], "Project": ["p", "p"], "BuildId": pa.array([1, 2], pa.int32()),
        "RecordId": ["a", "b"], "Attempt": pa.array([1, 1], pa.int64()),
        # An aware timestamp in nanoseconds: stored as naive UTC microseconds.
        "StartTime": pa.array([1_700_000_000_123_456_789, None], pa.timestamp("ns", tz="Europe/Paris")),
        "DurationSeconds": pa.array([3, 4], pa.int64()), "IngestedAt": pa.array([T, T], pa.timestamp("us")),
    })
    assert warehouse.ingest("TimelineRecords", data, "b1") == 2
    assert warehouse.execute_sql('SELECT "BuildId", "StartTime", "DurationSeconds", "Result" FROM "TimelineRecords" '
                                 'ORDER BY 1') == [(1, datetime(2023, 11, 14, 22, 13, 20, 123456), 3.0, None),
                                                   (2, None, 4.0, None)]


def test_an_arrow_table_with_a_column_the_table_lacks_is_refused(warehouse: LocalWarehouse) -> None:
    data = pa.table({"Organization": ["org"], "Project": ["p"], "BuildId": [1], "Typo": ["x"]})
    with pytest.raises(ValueError, match=r"^TimelineBuilds: column\(s\) not in the table: \['Typo'\]$"):
        warehouse.ingest("TimelineBuilds", data, "b1")


def test_dynamic_values_are_stored_as_json(warehouse: LocalWarehouse) -> None:
    warehouse.ingest("TimelineBuilds", [{"Organization": "org", "Project": "p", "BuildId": 1,
                                         "Tags": ["ci", "x86"], "IngestedAt": T}], "b1")
    assert warehouse.execute_sql('SELECT "Tags"[0]::VARCHAR, typeof("Tags") FROM "TimelineBuilds"') == \
        [('"ci"', "JSON")]


def test_a_failed_upsert_changes_nothing(warehouse: LocalWarehouse) -> None:
    warehouse.ingest("TimelineRecords", [record(1, "a", "failed")], "b1")
    warehouse.execute_sql('ALTER TABLE "TimelineRecords" ALTER COLUMN "BuildId" TYPE INTEGER')
    with pytest.raises(WarehouseError, match=r"^local ingestion into TimelineRecords \(batch b2\) failed: "):
        warehouse.ingest("TimelineRecords", [record(1, "a", "succeeded"), record(2**33, "b", "succeeded")], "b2")
    assert stored(warehouse) == [(1, "a", 1, "failed")]


def test_a_store_created_with_a_key_index_is_rebuilt_without_it_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    schema = load_tables()["TimelineRecords"]
    con = duckdb.connect(str(path))
    key = ", ".join(f'"{k}"' for k in schema.key)
    con.execute(_create_sql(schema).removesuffix(")") + f", PRIMARY KEY ({key}))")  # as earlier versions did
    con.execute("""INSERT INTO "TimelineRecords" ("Organization", "Project", "BuildId", "RecordId", "Attempt", "Result")
                   VALUES ('org', 'p', 1, 'a', 1, 'failed')""")
    con.close()
    wh = LocalWarehouse(path)
    try:
        assert "rebuilt table TimelineRecords without its primary-key index" in wh.apply_schema()
        assert wh.apply_schema() == []
        assert wh.execute_sql("SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'TimelineRecords' "
                              "ORDER BY 1") == [("NOT NULL",)] * len(schema.key)
        wh.ingest("TimelineRecords", [record(1, "a", "succeeded")], "b1")
        assert stored(wh) == [(1, "a", 1, "succeeded")]
    finally:
        wh.close()


def test_a_direct_arrow_write_gets_its_text_columns_treated(local_settings: Settings) -> None:
    data = pa.table({"Organization": ["org"] * 3, "Project": ["p"] * 3, "BuildId": [1, 2, 3],
                     "RequestedFor": ["alice", "alice", None],
                     "SourceBranch": ["refs/heads/mail-alice@example.com", "refs/heads/main", "refs/heads/main"],
                     "IngestedAt": pa.array([T] * 3, pa.timestamp("us"))})
    with connected(local_settings) as warehouse:
        warehouse.apply_schema()
        assert warehouse.ingest("TimelineBuilds", data, "arrow-1") == 3
    wh = LocalWarehouse(local_settings.path(local_settings.warehouse.path))
    try:
        rows = wh.execute_sql('SELECT "RequestedFor", "SourceBranch" FROM "TimelineBuilds" ORDER BY "BuildId"')
    finally:
        wh.close()
    assert rows[0][0] == rows[1][0] and rows[0][0].startswith("anon-") and rows[2][0] is None
    assert [r[1] for r in rows] == ["refs/heads/<email>", "refs/heads/main", "refs/heads/main"]


def committed(wh: LocalWarehouse) -> int:
    """Rows of TimelineRecords another connection sees: only what was committed."""
    return wh.con.cursor().execute('SELECT count(*) FROM "TimelineRecords"').fetchone()[0]


def test_inside_bulk_ingests_commit_once_the_open_transaction_holds_bulk_commit_rows(
        warehouse: LocalWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalWarehouse, "BULK_COMMIT_ROWS", 3)
    seen = []
    with warehouse.bulk():
        warehouse.ingest("TimelineRecords", [record(1, "a", "failed"), record(1, "b", "failed")], "b1")
        seen.append(committed(warehouse))
        warehouse.ingest("TimelineRecords", [record(2, "a", "failed"), record(2, "b", "failed")], "b1.1")
        seen.append(committed(warehouse))
        warehouse.ingest("TimelineRecords", [record(3, "a", "failed")], "b1.2")
        seen.append(committed(warehouse))
    seen.append(committed(warehouse))
    assert seen == [0, 4, 4, 5]


def test_a_failed_ingest_inside_bulk_rolls_back_the_open_transaction_and_keeps_what_was_committed(
        warehouse: LocalWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalWarehouse, "BULK_COMMIT_ROWS", 3)
    wide = [record(3, f"r{n}", "failed" * 1000) for n in range(2_000)]
    with pytest.raises(WarehouseError, match=r"^local ingestion into TimelineRecords \(batch b1.2\) failed: Out of "
                                             r"Memory Error"), warehouse.bulk():
        warehouse.ingest("TimelineRecords", [record(1, "a", "failed"), record(1, "b", "failed"),
                                             record(1, "c", "failed")], "b1")
        warehouse.ingest("TimelineRecords", [record(2, "a", "failed")], "b1.1")
        warehouse.set_memory_limit("2MB")  # what a batch too large for `load_memory_limit` meets
        warehouse.ingest("TimelineRecords", wide, "b1.2")
    warehouse.set_memory_limit("1GB")
    assert [r[:2] for r in stored(warehouse)] == [(1, "a"), (1, "b"), (1, "c")]
    warehouse.ingest("TimelineRecords", [record(4, "a", "failed")], "b2")  # outside bulk: commits on its own
    assert committed(warehouse) == 4


def test_an_open_bulk_transaction_holds_no_arrow_buffers_of_the_row_groups_it_merged(
        warehouse: LocalWarehouse) -> None:
    from etl.warehouse.rows import to_arrow

    schema = load_tables()["TimelineRecords"]

    def group(build: int) -> pa.Table:
        return to_arrow(schema, [record(build, f"record-{n:05d}", f"result text {n} " * 20) for n in range(2_000)])

    baseline = pa.total_allocated_bytes()
    with warehouse.bulk():
        for build in range(6):
            warehouse.ingest("TimelineRecords", group(build), f"b.{build}")
        held = pa.total_allocated_bytes() - baseline
    size = group(0).nbytes
    assert size > 500_000 and held < size  # a view registered per group kept all six alive until the commit
    assert committed(warehouse) == 12_000
