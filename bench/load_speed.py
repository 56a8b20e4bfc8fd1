"""Stage + load speed: timeline records through the outbox (typed Parquet) and the store's upsert, against DuckDB.

For each size (100k and 1M rows by default) a fresh subprocess stages TimelineRecords rows batch by
batch (10 builds × 2,000 records, each build one `add_item` with its raw payload, as a run does),
commits the batch and loads it with `etl.load.load_facts` into a real DuckDB file, so the table
grows to the size. A second subprocess does the same and, right after each batch loads, inserts
the very same rows (the staged Arrow tables) with a plain `INSERT INTO t SELECT * FROM arrow` into a
DuckDB file with no key (the reference), and with the previous load, `INSERT OR REPLACE` into a
table with a PRIMARY KEY: all three see the same table sizes under the same machine load. Peak RSS
comes from the first subprocess (no reference store in it). Printed: rows/s of stage+load, of the staging and the load alone and of both
references, by wall clock and by CPU time (other jobs on a shared machine slow the first, not the
second), the load's CPU cost per row over the first and the last tenth of the batches (the same
when cost per row does not grow with the table), the share of staging spent writing raw payloads,
and peak RSS with its trend over the batches (which must not grow with their number).

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
from typing import Any

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


def _clock() -> tuple[float, float]:
    """(wall, CPU of every thread of this process): other jobs on the machine slow the first, not the second."""
    return time.perf_counter(), time.process_time()


def child(total: int, references: bool) -> None:
    """Stage and load *total* rows; with *references*, insert every batch into the two reference stores
    right after it loads (the same table sizes under the same machine load), else measure RSS alone."""
    import duckdb
    import psutil

    from etl.json_line import json_line
    from etl.load import load_facts
    from etl.schema import load_tables
    from etl.stage.outbox import Manifest, Outbox
    from etl.warehouse.local import LocalWarehouse, _create_sql

    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    outbox = Outbox(work / "staging")
    limit = os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT", "256MB")
    wh = LocalWarehouse(work / "wh.duckdb", memory_limit=limit)
    wh.apply_schema()
    # The references: DuckDB alone inserting into a table with no key, and the previous load
    # (INSERT OR REPLACE into a table with a PRIMARY KEY), fed the very same staged Arrow tables.
    schema = load_tables()["TimelineRecords"]
    key = ", ".join(f'"{k}"' for k in schema.key)
    refs: dict[str, tuple[Any, str]] = {}
    if references:
        for name, create, insert in (
            ("plain", _create_sql(schema), "INSERT INTO"),
            ("keyed", _create_sql(schema).removesuffix(")") + f", PRIMARY KEY ({key}))", "INSERT OR REPLACE INTO"),
        ):
            con = duckdb.connect(str(work / f"{name}.duckdb"))
            con.execute(f"SET memory_limit = '{limit}'")
            con.execute(create)
            refs[name] = (con, insert)
    builds = total // RECORDS_PER_BUILD
    stage = [0.0, 0.0]  # wall, CPU
    spent = {name: [0.0, 0.0] for name in ("load", *refs)}
    per_batch: dict[str, list[float]] = {name: [] for name in spent}
    raw_cpu = 0.0
    rss_trend: list[int] = []
    for start in range(0, builds, BUILDS_PER_BATCH):
        ids = range(start + 1, min(builds, start + BUILDS_PER_BATCH) + 1)
        manifest = Manifest(f"bench-{start:08d}", "bench", "org", "proj", None, None, "2026-11-23T06:00:00",
                            builds=len(ids))
        staged = outbox.start(manifest)
        for build_id in ids:  # generated one build at a time, as a run normalizes them; generation is not timed
            rows = records(build_id)
            raw = raw_payload(rows)
            c0 = time.process_time()
            json_line(raw)  # what add_item spends on the raw line
            raw_cpu += time.process_time() - c0
            w0, c0 = _clock()
            staged.add_item(raw, {"TimelineRecords": rows})
            w1, c1 = _clock()
            stage[0], stage[1] = stage[0] + w1 - w0, stage[1] + c1 - c0
            del rows, raw
        w0, c0 = _clock()
        staged.commit("pending")
        w1, c1 = _clock()
        load_facts(wh, outbox, manifest)
        w2, c2 = _clock()
        stage[0], stage[1] = stage[0] + w1 - w0, stage[1] + c1 - c0
        timings = {"load": (w2 - w1, c2 - c1)}
        for name, (con, insert) in refs.items():
            w0, c0 = _clock()
            for data in outbox.tables(manifest.batch_id, "TimelineRecords"):
                con.register("_batch", data)
                con.execute(f'{insert} "TimelineRecords" SELECT * FROM _batch')
                con.unregister("_batch")
            w1, c1 = _clock()
            timings[name] = (w1 - w0, c1 - c0)
        for name, (wall, cpu) in timings.items():
            spent[name][0] += wall
            spent[name][1] += cpu
            per_batch[name].append(cpu)
        rss_trend.append(psutil.Process().memory_info().rss >> 20)
        outbox.set_status(manifest, "loaded")
        outbox.prune(0)
    loaded = int(wh.execute_sql('SELECT count(*) FROM "TimelineRecords"')[0][0])
    distinct = int(wh.execute_sql('SELECT count(*) FROM (SELECT DISTINCT "Organization", "Project", "BuildId", '
                                  '"RecordId", "Attempt" FROM "TimelineRecords")')[0][0])
    wh.close()
    for con, _ in refs.values():
        con.close()
    tenth = max(1, len(rss_trend) // 10)
    rows_per_batch = RECORDS_PER_BUILD * BUILDS_PER_BATCH

    def growth(cpu: list[float]) -> list[float]:
        """CPU microseconds per row over the first and the last tenth of the batches."""
        return [sum(part) / (rows_per_batch * tenth) * 1e6 for part in (cpu[:tenth], cpu[-tenth:])]

    print(json.dumps({
        "rows": builds * RECORDS_PER_BUILD, "loaded": loaded, "distinct": distinct, "batches": len(rss_trend),
        "wall": {"pipeline": loaded / (stage[0] + spent["load"][0]), "stage": loaded / stage[0],
                 **{name: loaded / s[0] for name, s in spent.items()}},
        "cpu": {"pipeline": loaded / (stage[1] + spent["load"][1]), "stage": loaded / stage[1],
                **{name: loaded / s[1] for name, s in spent.items()}},
        "growth": {name: growth(cpu) for name, cpu in per_batch.items()},
        "raw_share": raw_cpu / stage[1], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "rss_trend": rss_trend[:: max(1, len(rss_trend) // 10)],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--references", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.references)
        return

    def run(size: int, *extra: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--child", str(size), *extra], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent.parent)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert r["loaded"] == r["distinct"] == r["rows"], r
        return r

    for size in args.sizes:
        alone = run(size)  # RSS of the ETL's own stage + load, with no reference store in the process
        r = run(size, "--references")
        print(f"{r['rows']:,} TimelineRecords rows in {r['batches']} batches; stage+load alone: peak RSS "
              f"{alone['peak_rss_mb']} MB, RSS after batches (MB, sampled) {alone['rss_trend']}; raw JSON lines "
              f"{r['raw_share']:.0%} of staging CPU")
        print(f"  {'rows/s':<9} {'stage+load':>11} {'stage':>9} {'load':>9} {'DuckDB insert':>14} "
              f"{'load/insert':>12} {'INSERT OR REPLACE':>18}")
        for clock in ("wall", "cpu"):
            c = r[clock]
            print(f"  {clock:<9} {c['pipeline']:>11,.0f} {c['stage']:>9,.0f} {c['load']:>9,.0f} {c['plain']:>14,.0f} "
                  f"{c['load'] / c['plain']:>11.2f}x {c['keyed']:>18,.0f}")
        g = r["growth"]
        print("  CPU µs/row, first → last tenth of the batches: "
              + ", ".join(f"{name} {first:.1f} → {last:.1f} ({last / first:.2f}x)"
                          for name, (first, last) in (("upsert", g["load"]), ("DuckDB insert", g["plain"]),
                                                      ("INSERT OR REPLACE", g["keyed"]))))


if __name__ == "__main__":
    main()
