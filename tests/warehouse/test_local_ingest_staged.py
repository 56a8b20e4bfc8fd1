"""The local store's load of a staged Parquet file: DuckDB reads it, one row group at a time, replacing rows by key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.schema import load_tables
from etl.warehouse.base import WarehouseError
from etl.warehouse.local import LocalWarehouse
from etl.warehouse.rows import to_arrow

T = datetime(2026, 11, 1, 6, 0)
RECORDS = load_tables()["TimelineRecords"]


def record(build: int, record_id: str, result: str, attempt: int = 1) -> dict:
    return {"Organization": "org", "Project": "p", "BuildId": build, "RecordId": record_id, "Attempt": attempt,
            "Result": result, "StartTime": T, "IngestedAt": T}


def staged(tmp_path: Path, rows: list[dict], group_rows: int = 2, name: str = "TimelineRecords.parquet") -> Path:
    """A file written as the outbox writes one (no statistics, no dictionaries), *group_rows* rows a row group."""
    path = tmp_path / name
    pq.write_table(to_arrow(RECORDS, rows), path, row_group_size=group_rows, compression="none",
                   use_dictionary=False, write_statistics=False)
    return path


def stored(wh: LocalWarehouse) -> list[tuple]:
    return wh.execute_sql('SELECT "BuildId", "RecordId", "Attempt", "Result" FROM "TimelineRecords" ORDER BY ALL')


def test_a_staged_file_loads_every_row_group_and_reports_each_to_progress(warehouse: LocalWarehouse,
                                                                         tmp_path: Path) -> None:
    path = staged(tmp_path, [record(1, "a", "failed"), record(1, "b", "succeeded"), record(2, "a", "canceled")])
    seen: list[int] = []
    assert warehouse.ingest_staged("TimelineRecords", path, "b1", seen.append) == 3
    assert seen == [2, 1]
    assert stored(warehouse) == [(1, "a", 1, "failed"), (1, "b", 1, "succeeded"), (2, "a", 1, "canceled")]


def test_staged_rows_replace_the_stored_rows_with_their_keys_and_keep_the_others(warehouse: LocalWarehouse,
                                                                               tmp_path: Path) -> None:
    warehouse.ingest("TimelineRecords", [record(1, "a", "failed"), record(1, "b", "failed")], "b0")
    path = staged(tmp_path, [record(1, "a", "succeeded"), record(1, "a", "failed", attempt=2)])
    assert warehouse.ingest_staged("TimelineRecords", path, "b1") == 2
    assert stored(warehouse) == [(1, "a", 1, "succeeded"), (1, "a", 2, "failed"), (1, "b", 1, "failed")]


def test_loading_a_staged_file_twice_leaves_one_row_per_key(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    path = staged(tmp_path, [record(1, "a", "failed"), record(1, "b", "succeeded"), record(2, "a", "canceled")])
    warehouse.ingest_staged("TimelineRecords", path, "b1")
    assert warehouse.ingest_staged("TimelineRecords", path, "b1") == 3
    assert warehouse.execute_sql('SELECT count(*) FROM "TimelineRecords"') == [(3,)]


def test_a_key_staged_twice_in_one_row_group_keeps_its_last_row(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    path = staged(tmp_path, [record(1, "a", "failed"), record(1, "b", "failed"), record(1, "a", "succeeded")],
                  group_rows=3)
    assert warehouse.ingest_staged("TimelineRecords", path, "b1") == 2
    assert stored(warehouse) == [(1, "a", 1, "succeeded"), (1, "b", 1, "failed")]


def test_a_key_staged_again_in_a_later_row_group_keeps_the_later_row(warehouse: LocalWarehouse,
                                                                    tmp_path: Path) -> None:
    path = staged(tmp_path, [record(1, "a", "failed"), record(1, "b", "failed"), record(1, "a", "succeeded")])
    warehouse.ingest_staged("TimelineRecords", path, "b1")
    assert stored(warehouse) == [(1, "a", 1, "succeeded"), (1, "b", 1, "failed")]


def test_a_file_staged_with_other_columns_loads_through_the_arrow_path(warehouse: LocalWarehouse,
                                                                      tmp_path: Path) -> None:
    # A batch staged by an earlier version, before the table gained columns: the missing ones load as nulls.
    path = tmp_path / "TimelineRecords.parquet"
    pq.write_table(pa.table({"Organization": ["org"], "Project": ["p"], "BuildId": [7], "RecordId": ["a"],
                             "Attempt": [1], "Result": ["failed"]}), path)
    assert warehouse.ingest_staged("TimelineRecords", path, "b1") == 1
    assert warehouse.execute_sql('SELECT "BuildId", "Result", "WorkerName" FROM "TimelineRecords"') == \
        [(7, "failed", None)]


def test_dynamic_columns_of_a_staged_file_are_stored_as_json(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    builds = load_tables()["TimelineBuilds"]
    path = tmp_path / "TimelineBuilds.parquet"
    pq.write_table(to_arrow(builds, [{"Organization": "org", "Project": "p", "BuildId": 1, "Tags": ["ci", "x86"],
                                      "IngestedAt": T}]), path, write_statistics=False)
    assert warehouse.ingest_staged("TimelineBuilds", path, "b1") == 1
    assert warehouse.execute_sql('SELECT "Tags"[1]::VARCHAR, typeof("Tags") FROM "TimelineBuilds"') == \
        [('"x86"', "JSON")]


def test_keys_longer_than_parquet_keeps_statistics_for_load_by_their_own_bounds(warehouse: LocalWarehouse,
                                                                             tmp_path: Path) -> None:
    long_id = "r" * 5000
    warehouse.ingest("TimelineRecords", [record(1, long_id, "failed")], "b0")
    path = staged(tmp_path, [record(1, long_id, "succeeded"), record(1, "a", "failed")])
    warehouse.ingest_staged("TimelineRecords", path, "b1")
    assert [(b, r[:3], a, res) for b, r, a, res in stored(warehouse)] == [(1, "a", 1, "failed"),
                                                                         (1, "rrr", 1, "succeeded")]


def test_a_garbled_staged_file_fails_naming_the_table_batch_and_file(warehouse: LocalWarehouse,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "TimelineRecords.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(WarehouseError, match=r"^local ingestion into TimelineRecords \(batch b1\): staged file "
                                             r"TimelineRecords.parquet is not a readable Parquet file \("):
        warehouse.ingest_staged("TimelineRecords", path, "b1")
    assert stored(warehouse) == []


def test_a_failed_row_group_inside_bulk_rolls_back_the_open_transaction(warehouse: LocalWarehouse,
                                                                       tmp_path: Path) -> None:
    warehouse.ingest("TimelineRecords", [record(1, "a", "failed")], "b0")
    warehouse.execute_sql('ALTER TABLE "TimelineRecords" ALTER COLUMN "BuildId" TYPE INTEGER')
    path = staged(tmp_path, [record(1, "a", "succeeded"), record(2, "b", "succeeded"), record(2**33, "c", "x")])
    failed = r"^local ingestion into TimelineRecords \(batch b1\) failed: "
    with pytest.raises(WarehouseError, match=failed), warehouse.bulk():
        warehouse.ingest_staged("TimelineRecords", path, "b1")
    assert stored(warehouse) == [(1, "a", 1, "failed")]


def test_a_staged_file_garbled_inside_its_pages_fails_naming_the_table_and_batch(warehouse: LocalWarehouse,
                                                                                tmp_path: Path) -> None:
    path = staged(tmp_path, [record(i, f"r{i}", "failed") for i in range(1, 5)])
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    data[4:len(data) - footer - 8] = b"\xff" * (len(data) - footer - 12)  # every page, not the footer
    path.write_bytes(bytes(data))
    with pytest.raises(WarehouseError, match=r"^local ingestion into TimelineRecords \(batch b1\) failed: "):
        warehouse.ingest_staged("TimelineRecords", path, "b1")
    assert stored(warehouse) == []
