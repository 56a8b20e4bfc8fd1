"""A staged batch upserted from its Parquet file by DuckDB itself, against the Arrow path the load uses now.

The load reads each staged row group into Arrow and MERGEs it through DuckDB's replacement scan, which
takes the GIL again and again (bench/arrow_scan_gil.py). A MERGE whose source is `read_parquet` of the
staged file (one row group by `file_row_number`, the last row per key by `QUALIFY`, the key bounds from the
row group's statistics) has no Python in its scan. This times both into a fresh store with the 64MB load
limit, alone and beside a Python thread decoding JSON, and checks that both stores hold the same rows.

Run: .venv/bin/python bench/staged_merge_gil.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TABLE = "TimelineRecords"


def _arrow_load(warehouse: Any, path: str, schema: Any) -> None:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    with warehouse.bulk():
        for group in range(parquet.num_row_groups):
            warehouse.ingest(TABLE, parquet.read_row_group(group), "bench")


def _parquet_load(warehouse: Any, path: str, schema: Any) -> None:
    import pyarrow.parquet as pq

    from etl.warehouse.local import merge_statement

    parquet = pq.ParquetFile(path)
    keys = ", ".join(f'"{k}"' for k in schema.key)
    key_index = [parquet.schema_arrow.get_field_index(k) for k in schema.key]
    # The statement's parameters: the file and its row group's rows (here), then the key bounds (below).
    merge = merge_statement(schema, "read_parquet(?, file_row_number=true) WHERE file_row_number BETWEEN ? AND ? "
                                    f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY file_row_number DESC) = 1")
    con, start = warehouse.con, 0
    con.execute("BEGIN TRANSACTION")
    for group in range(parquet.num_row_groups):
        meta = parquet.metadata.row_group(group)
        params = [path, start, start + meta.num_rows - 1]
        for index in key_index:
            stats = meta.column(index).statistics
            params += [stats.min, stats.max]
        con.execute(merge, params)
        start += meta.num_rows
        if group % 5 == 4:  # about the load's transactions of 100,000 rows
            con.execute("COMMIT")
            con.execute("BEGIN TRANSACTION")
    con.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Example: .venv/bin/python bench/staged_merge_gil.py --rows 200000")
    parser.add_argument("--rows", type=int, default=200_000, help="TimelineRecords rows staged (20,000 a row group)")
    args = parser.parse_args()
    import pyarrow.parquet as pq
    from arrow_scan_gil import _row_group

    from etl.schema import load_tables
    from etl.warehouse.local import LocalWarehouse
    from etl.warehouse.rows import to_arrow

    schema = load_tables()[TABLE]
    directory = tempfile.mkdtemp(prefix="staged-merge-")
    path = os.path.join(directory, f"{TABLE}.parquet")
    pq.write_table(to_arrow(schema, _row_group(args.rows)), path, row_group_size=20_000)
    texts = [json.dumps({"id": i, "name": f"record {i}", "children": list(range(8))}) for i in range(1000)]

    def busy(stop: threading.Event) -> None:
        while not stop.is_set():
            for text in texts:
                json.loads(text)

    loads: dict[str, Callable[[Any, str, Any], None]] = {"Arrow scan": _arrow_load, "read_parquet": _parquet_load}
    print(f"{args.rows:,} {TABLE} rows into a fresh store, DuckDB memory_limit 64MB")
    for beside in (False, True):
        for name, load in loads.items():
            warehouse = LocalWarehouse(os.path.join(directory, f"{name}-{beside}.duckdb".replace(" ", "-")))
            warehouse.apply_schema()
            warehouse.set_memory_limit("64MB")
            stop = threading.Event()
            thread = threading.Thread(target=busy, args=(stop,), daemon=True)
            if beside:
                thread.start()
            started = time.perf_counter()
            load(warehouse, path, schema)
            seconds = time.perf_counter() - started
            stop.set()
            if beside:
                thread.join()
            rows, digest = warehouse.con.execute(f'SELECT count(*), sum(hash(t)) FROM "{TABLE}" t'
                                                 ).fetchone() or (0, 0)
            warehouse.close()
            where = "beside a busy thread" if beside else "alone"
            print(f"  {name:<13} {where:<21} {seconds:6.2f} s  {args.rows / seconds:>9,.0f} rows/s  "
                  f"{rows:,} rows, digest {digest}")


if __name__ == "__main__":
    main()
