"""ETL throughput: timeline records normalized + staged + loaded per second, against plain json.loads.

For each size (100k and 1M timeline records) a fresh subprocess generates synthetic builds with
large timelines (2,000 records each, 5% with an error issue) in bounded batches, and pushes every
batch through the real path: json.loads → normalize_bundle (scrub, classify, paths) → outbox
staging → load into a DuckDB file. It prints records/s, the json.loads rate of the same bytes,
their ratio, and the peak RSS; RSS must not grow with the number of batches.

Run: .venv/bin/python bench/etl_throughput.py [--sizes 100000 1000000]
(The store runs with `warehouse.memory_limit` = BENCH_DUCKDB_MEMORY_LIMIT, default 256MB: without a cap
DuckDB's buffer cache keeps the pages of the growing tables, up to 80% of RAM.)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

RECORDS_PER_BUILD = 2000
BUILDS_PER_BATCH = 10


def timeline(build_id: int, n: int) -> dict:
    records = [{"id": f"stage-{build_id}", "parentId": None, "type": "Stage", "name": "Build", "order": 1,
                "state": "completed", "result": "succeeded", "attempt": 1}]
    jobs = max(1, n // 100)
    for j in range(jobs):
        job_id = f"job-{build_id}-{j}"
        records.append({"id": job_id, "parentId": records[0]["id"], "type": "Job", "name": f"Job {j}",
                        "order": j + 1, "state": "completed", "result": "succeeded", "attempt": 1,
                        "workerName": f"agent-{j % 40:02d}", "startTime": "2026-11-01T06:00:00.1234567Z",
                        "finishTime": "2026-11-01T06:30:00.7654321Z"})
    i = 0
    while len(records) < n:
        j = i % jobs
        rec = {"id": f"task-{build_id}-{i}", "parentId": f"job-{build_id}-{j}", "type": "Task",
               "name": f"Step {i}", "order": i // jobs + 1, "state": "completed", "result": "succeeded",
               "attempt": 1, "startTime": "2026-11-01T06:01:00.1234567Z",
               "finishTime": "2026-11-01T06:02:00.1234567Z", "workerName": f"agent-{j % 40:02d}",
               "task": {"id": "d9bafed4-0b18-4f58-968d-86655b4d2ce9", "name": "CmdLine", "version": "2.212.0"},
               "log": {"id": i, "url": f"https://dev.azure.com/o/p/_apis/build/builds/{build_id}/logs/{i}"},
               "errorCount": 0, "warningCount": 0, "changeId": 3, "lastModified": "0001-01-01T00:00:00"}
        if i % 20 == 0:
            rec["result"] = "failed"
            rec["issues"] = [{"type": "error", "category": "General",
                              "message": f"error CS0103: The name 'x{i}' does not exist in /home/dev/src/a{i}.cs",
                              "data": {"logFileLineNumber": str(i)}}]
        records.append(rec)
        i += 1
    return {"id": f"tl-{build_id}", "records": records}


def build(build_id: int) -> dict:
    return {"id": build_id, "buildNumber": str(build_id), "status": "completed", "result": "succeeded",
            "reason": "individualCI", "queueTime": "2026-11-01T05:59:00Z", "startTime": "2026-11-01T06:00:00Z",
            "finishTime": "2026-11-01T06:30:00Z", "sourceBranch": "refs/heads/main", "sourceVersion": "ab" * 20,
            "definition": {"id": 1, "name": "ci", "path": "\\"}}


def child(total: int) -> None:
    import psutil

    from etl.classify import classifier_for
    from etl.config import PROJECT_ROOT, load_config
    from etl.load import load_batch
    from etl.normalize import NormalizeContext, normalize_bundle
    from etl.privacy import apply_policy, scrubber_for
    from etl.sources.azure_devops.extract import BuildBundle
    from etl.stage.outbox import Manifest, Outbox
    from etl.stage.quarantine import Quarantine
    from etl.warehouse.local import LocalWarehouse

    work = Path(tempfile.mkdtemp(prefix="etl-bench-"))
    (work / "config").mkdir()
    (work / "config" / "bench.yaml").write_text(json.dumps({
        "sources": [{"kind": "simulator"}], "staging": {"dir": str(work / "staging")},
        "classification": {"rules": str(PROJECT_ROOT / "config" / "failure-rules.yaml")}}))
    settings = load_config(work / "config" / "bench.yaml")
    scrubber, classifier = scrubber_for(settings), classifier_for(settings)
    outbox = Outbox(work / "staging", rows_policy=functools.partial(apply_policy, scrubber))
    quarantine = Quarantine(work / "staging")
    wh = LocalWarehouse(work / "wh.duckdb", memory_limit=os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT", "256MB"))
    wh.apply_schema()
    builds = total // RECORDS_PER_BUILD
    parse_s = pipeline_s = 0.0
    records = 0
    rss_after_first = 0
    rss_trend: list[int] = []
    for start in range(0, builds, BUILDS_PER_BATCH):
        ids = range(start + 1, min(builds, start + BUILDS_PER_BATCH) + 1)
        payloads = [json.dumps(timeline(i, RECORDS_PER_BUILD)).encode() for i in ids]
        t0 = time.perf_counter()
        for p in payloads:
            json.loads(p)
        parse_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        staged_at = datetime(2026, 11, 23, 6, 0)
        manifest = Manifest(f"bench-{start}", "bench", "org", "proj", "2026-11-01T00:00:00",
                            "2026-11-01T06:30:00", staged_at.isoformat(), builds=len(ids))
        staged = outbox.start(manifest)
        ctx = NormalizeContext("bench", "org", staged_at, scrubber, classifier, quarantine)
        for build_id, p in zip(ids, payloads, strict=True):
            body = json.loads(p)
            bundle = BuildBundle("proj", build(build_id), [(body["id"], body["records"])])
            for table, rows in normalize_bundle(ctx, bundle).items():
                staged.add_rows(table, rows)
        staged.commit("pending")
        load_batch(wh, outbox, manifest)
        pipeline_s += time.perf_counter() - t0
        records += RECORDS_PER_BUILD * len(ids)
        del payloads
        if start == 0:
            rss_after_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        rss_trend.append(psutil.Process().memory_info().rss >> 20)
        outbox.prune(0)
    loaded = int(wh.execute_sql('SELECT count(*) FROM "TimelineRecords"')[0][0])
    # DuckDB's own memory (buffer pool, primary-key index) grows with the rows stored, not with the batch size.
    art_mb = int(wh.execute_sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()")[0][0]) >> 20
    wh.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"records": records, "loaded": loaded, "pipeline_rate": records / pipeline_s,
                      "parse_rate": records / parse_s, "peak_rss_mb": peak, "rss_after_first_batch_mb": rss_after_first,
                      "art_index_mb": art_mb, "rss_trend": rss_trend[:: max(1, len(rss_trend) // 10)],
                      "batches": -(-builds // BUILDS_PER_BATCH)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"{'records':>10} {'batches':>8} {'normalized+loaded/s':>20} {'json.loads/s':>14} {'ratio':>7} "
          f"{'RSS after 1st batch':>20} {'peak RSS':>9} {'of it: DuckDB':>14}")
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent.parent)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert r["loaded"] == r["records"], r
        print(f"{r['records']:>10,} {r['batches']:>8} {r['pipeline_rate']:>20,.0f} {r['parse_rate']:>14,.0f} "
              f"{r['parse_rate'] / r['pipeline_rate']:>6.0f}x {r['rss_after_first_batch_mb']:>17} MB "
              f"{r['peak_rss_mb']:>6} MB {r['art_index_mb']:>11} MB")
        print(f"{'':>10} RSS after batches (MB, sampled): {r['rss_trend']}")


if __name__ == "__main__":
    main()
