"""Stage + load speed: timeline records through the outbox (typed Parquet) and the store's upsert, against DuckDB.

For each size (100k and 1M rows by default) a fresh subprocess stages TimelineRecords rows batch by
batch (10 builds × 2,000 records, each build one `add_item` with its raw payload, as a run does),
commits the batch and loads it with `etl.load.load_facts` into a real DuckDB file, so the table
grows to the size. In the same process, as the reference, the very same rows (the staged Arrow
tables) are inserted with a plain `INSERT INTO t SELECT * FROM arrow` into a fresh DuckDB file with
no key. Printed: rows/s of stage+load, of the load alone, of the reference, their ratio, the load's
rate over the first and the last tenth of the batches (flat when cost per row does not grow with
the table), the share of staging spent serializing raw payloads, and peak RSS (which must not grow
with the number of batches).

Run: .venv/bin/python bench/load_speed.py [--sizes 100000 1000000]
(The store runs with `warehouse.memory_limit` = BENCH_DUCKDB_MEMORY_LIMIT, default 256MB, as in
bench/etl_throughput.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

RECORDS_PER_BUILD = 2000
BUILDS_PER_BATCH = 10
T0 = datetime(2026, 11, 1, 6, 0)


def records(build_id: int) -> list[dict]:
    """One build's normalized TimelineRecords rows: typed datetimes and ISO-8601 text, as normalizers hand them."""
    out = []
    for i in range(RECORDS_PER_BUILD):
        start = T0 + timedelta(minutes=build_id % 600, seconds=i)
        out.append({
            "Organization": "org", "Project": "proj", "BuildId": build_id, "RecordId": f"task-{build_id}-{i}",
            "Attempt": 1, "TimelineId": f"tl-{build_id}", "ParentId": f"job-{build_id}-{i % 20}", "Type": "Task",
            "Name": f"Step {i}", "Identifier": None, "Path": f"Build/Job {i % 20}/Step {i}", "RecordOrder": i,
            "State": "completed", "Result": "failed" if i % 20 == 0 else "succeeded", "ResultCode": None,
            "StartTime": start, "FinishTime": start + timedelta(seconds=60), "DurationSeconds": 60.0,
            "WorkerName": f"anon-{i % 40:012d}", "QueueId": 12, "TaskId": "d9bafed4-0b18-4f58-968d-86655b4d2ce9",
            "TaskName": "CmdLine", "TaskVersion": "2.212.0", "ErrorCount": int(i % 20 == 0), "WarningCount": 0,
            "LogId": i, "LogUrl": f"https://dev.azure.com/o/p/_apis/build/builds/{build_id}/logs/{i}", "ChangeId": 3,
            "LastModified": "2026-11-01T06:30:00.1234567Z", "FailureCategory": "build" if i % 20 == 0 else None,
            "FailureOrigin": None, "Signature": None, "DefinitionId": 1, "Definition": "ci", "SourceBranch":
            "refs/heads/main", "TargetBranch": None, "BuildKind": "CI", "QueueTime": "2026-11-01T05:59:00Z",
            "IngestedAt": datetime(2026, 11, 23, 6, 0),
        })
    return out


def raw_payload(rows: list[dict]) -> dict:
    """A raw build bundle of about the real size (the scrubbed Azure DevOps timeline, one dict per record)."""
    return {"build": {"id": rows[0]["BuildId"]}, "timelines": [{"id": rows[0]["TimelineId"], "records": [
        {"id": r["RecordId"], "parentId": r["ParentId"], "type": r["Type"], "name": r["Name"], "order": r["RecordOrder"],
         "state": r["State"], "result": r["Result"], "startTime": r["StartTime"].isoformat() + "Z",
         "finishTime": r["FinishTime"].isoformat() + "Z", "workerName": r["WorkerName"],
         "log": {"id": r["LogId"], "url": r["LogUrl"]}} for r in rows]}]}


def child(total: int) -> None:
    import duckdb
    import psutil

    from etl.load import load_facts
    from etl.schema import load_tables
    from etl.stage.outbox import Manifest, Outbox, _raw_line
    from etl.warehouse.local import LocalWarehouse, _create_sql

    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    outbox = Outbox(work / "staging")
    limit = os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT", "256MB")
    wh = LocalWarehouse(work / "wh.duckdb", memory_limit=limit)
    wh.apply_schema()
    builds = total // RECORDS_PER_BUILD
    stage_s = load_s = raw_s = 0.0
    load_times: list[float] = []
    rss_trend: list[int] = []
    batch_ids: list[str] = []
    for start in range(0, builds, BUILDS_PER_BATCH):
        ids = range(start + 1, min(builds, start + BUILDS_PER_BATCH) + 1)
        items = [records(i) for i in ids]
        raws = [raw_payload(rows) for rows in items]
        t0 = time.perf_counter()
        for raw in raws:
            _raw_line(raw)  # what add_item spends on the raw line
        raw_s += time.perf_counter() - t0
        manifest = Manifest(f"bench-{start:08d}", "bench", "org", "proj", None, None, "2026-11-23T06:00:00",
                            builds=len(ids))
        t0 = time.perf_counter()
        staged = outbox.start(manifest)
        for raw, rows in zip(raws, items, strict=True):
            staged.add_item(raw, {"TimelineRecords": rows})
        staged.commit("pending")
        t1 = time.perf_counter()
        load_facts(wh, outbox, manifest)
        t2 = time.perf_counter()
        stage_s, load_s = stage_s + t1 - t0, load_s + t2 - t1
        load_times.append(t2 - t1)
        batch_ids.append(manifest.batch_id)
        del items, raws
        rss_trend.append(psutil.Process().memory_info().rss >> 20)
    loaded = int(wh.execute_sql('SELECT count(*) FROM "TimelineRecords"')[0][0])
    distinct = int(wh.execute_sql('SELECT count(*) FROM (SELECT DISTINCT "Organization", "Project", "BuildId", '
                                  '"RecordId", "Attempt" FROM "TimelineRecords")')[0][0])
    wh.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # before the reference runs

    # The reference: the same rows, already Arrow, inserted by DuckDB alone into a table with no key.
    schema = load_tables()["TimelineRecords"]
    con = duckdb.connect(str(work / "reference.duckdb"))
    con.execute(f"SET memory_limit = '{limit}'")
    con.execute(_create_sql(schema))
    ref_s = 0.0
    for batch_id in batch_ids:
        for data in outbox.tables(batch_id, "TimelineRecords"):
            t0 = time.perf_counter()
            con.register("_batch", data)
            con.execute('INSERT INTO "TimelineRecords" SELECT * FROM _batch')
            con.unregister("_batch")
            ref_s += time.perf_counter() - t0
    con.close()
    tenth = max(1, len(load_times) // 10)
    rows_per_batch = RECORDS_PER_BUILD * BUILDS_PER_BATCH
    print(json.dumps({
        "rows": builds * RECORDS_PER_BUILD, "loaded": loaded, "distinct": distinct, "batches": len(load_times),
        "pipeline_rate": loaded / (stage_s + load_s), "stage_rate": loaded / stage_s, "load_rate": loaded / load_s,
        "reference_rate": loaded / ref_s, "raw_share": raw_s / stage_s,
        "load_rate_first": rows_per_batch * tenth / sum(load_times[:tenth]),
        "load_rate_last": rows_per_batch * tenth / sum(load_times[-tenth:]),
        "peak_rss_mb": peak, "rss_trend": rss_trend[:: max(1, len(rss_trend) // 10)],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"{'rows':>10} {'batches':>7} {'stage+load/s':>13} {'stage/s':>9} {'load/s':>9} {'DuckDB insert/s':>16} "
          f"{'load/ref':>8} {'load/s 1st 10%':>15} {'last 10%':>9} {'raw json':>8} {'peak RSS':>9}")
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent.parent)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert r["loaded"] == r["distinct"] == r["rows"], r
        print(f"{r['rows']:>10,} {r['batches']:>7} {r['pipeline_rate']:>13,.0f} {r['stage_rate']:>9,.0f} "
              f"{r['load_rate']:>9,.0f} {r['reference_rate']:>16,.0f} {r['load_rate'] / r['reference_rate']:>7.2f}x "
              f"{r['load_rate_first']:>15,.0f} {r['load_rate_last']:>9,.0f} {r['raw_share']:>7.0%} "
              f"{r['peak_rss_mb']:>6} MB")
        print(f"{'':>10} RSS after batches (MB, sampled): {r['rss_trend']}")


if __name__ == "__main__":
    main()
