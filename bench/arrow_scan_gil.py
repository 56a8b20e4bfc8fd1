"""DuckDB's scan of an Arrow table with the GIL free, and then while another Python thread is busy.

A batch could load on a thread while the next batch stages in the main process. This measures what
that thread would meet. The load's upsert reads its Arrow table through DuckDB's replacement scan,
and that scan takes the GIL again and again. Beside a busy Python thread it slows many times over.
In a real run it also held more of DuckDB's memory, which took a 64MB load past DuckDB's limit
(docs/benchmarks.md, "Loading beside staging").

The table has the shape of one staged row group of TimelineRecords: 20,000 rows of `bench/scale.py`'s
dnceng-shaped records, typed as they are staged. It is scanned 20 times with the GIL free, then 20 times while a
thread decodes JSON, and the ratio of the two times is printed.

Run: .venv/bin/python bench/arrow_scan_gil.py [--rows 20000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import datetime
from typing import Any


def _row_group(rows: int) -> Any:
    """*rows* TimelineRecords rows from `bench/scale.py`'s generator (the dnceng-shaped store's)."""
    import numpy as np
    from scale import FULL_BUILDS, RECORDS_PER_BUILD, fleet, records_table

    builds = -(-rows // RECORDS_PER_BUILD)
    end = datetime(2026, 12, 1)
    f = fleet(max(builds, 10) / FULL_BUILDS, end)
    table = records_table(f, np.arange(builds), np.datetime64(end, "us"), np.random.default_rng(15))
    return table.slice(0, rows)


def _scan_seconds(con: Any, table: Any, repeat: int) -> float:
    ci_telemetry_batch = table  # noqa: F841  (read by name, as the load's MERGE reads its batch)
    started = time.perf_counter()
    for _ in range(repeat):
        con.execute('SELECT count(*), sum(length("RecordId")), max("StartTime") FROM ci_telemetry_batch').fetchall()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Example: .venv/bin/python bench/arrow_scan_gil.py --rows 20000")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the table (a staged row group: 20,000)")
    parser.add_argument("--repeat", type=int, default=20, help="scans per measurement")
    args = parser.parse_args()
    import duckdb

    table = _row_group(args.rows)
    con = duckdb.connect()
    _scan_seconds(con, table, 2)  # warm-up
    free = _scan_seconds(con, table, args.repeat)
    stop = threading.Event()
    texts = [json.dumps({"id": i, "name": f"record {i}", "children": list(range(8))}) for i in range(1000)]

    def busy() -> None:
        while not stop.is_set():
            for text in texts:
                json.loads(text)

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()
    try:
        busy_s = _scan_seconds(con, table, args.repeat)
    finally:
        stop.set()
        thread.join()
    con.close()
    per = 1000 / args.repeat
    print(f"{args.rows:,} rows, {table.nbytes >> 20} MB of Arrow, {args.repeat} scans each")
    print(f"  the GIL free:              {free * per:8.1f} ms a scan")
    print(f"  beside a busy Python thread: {busy_s * per:6.1f} ms a scan   ratio {busy_s / free:.1f}x")


if __name__ == "__main__":
    main()
