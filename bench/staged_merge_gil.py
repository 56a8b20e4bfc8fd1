"""A staged batch loaded from its Parquet file by DuckDB itself, against the Arrow path it replaced.

The Arrow path reads each staged row group into Arrow and MERGEs it through DuckDB's replacement scan,
which takes the GIL again and again (bench/arrow_scan_gil.py). The load now (`LocalWarehouse.ingest_staged`)
has DuckDB read each row group with `read_parquet` and replace the rows with its keys (a delete, then an
insert): no Python in its scan. This times both into a fresh store with the 64MB load limit, a batch's
row groups in `bulk` transactions, alone and beside a Python thread decoding JSON, and checks that both
stores hold the same rows.

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
    from pathlib import Path

    with warehouse.bulk():
        warehouse.ingest_staged(TABLE, Path(path), "bench")


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
    # Written as the outbox writes a staged file (etl/stage/outbox.py).
    pq.write_table(to_arrow(schema, _row_group(args.rows)), path, row_group_size=20_000, compression="none",
                   use_dictionary=False, write_statistics=False)
    texts = [json.dumps({"id": i, "name": f"record {i}", "children": list(range(8))}) for i in range(1000)]

    def busy(stop: threading.Event) -> None:
        while not stop.is_set():
            for text in texts:
                json.loads(text)

    loads: dict[str, Callable[[Any, str, Any], None]] = {"Arrow scan": _arrow_load, "ingest_staged": _parquet_load}
    print(f"{args.rows:,} {TABLE} rows into a fresh store, DuckDB memory_limit 64MB")  # the load's limit
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
