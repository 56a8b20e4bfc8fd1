"""ETL throughput on the real path: `run_etl` against the simulator, beside json.loads of the same bytes.

A child process starts the simulated organization (90 days × 50 builds/day by default, scaled by
`--fraction`), renders every response once (a warm-up run records the bytes of each URL it asks
for), then serves those pre-rendered bytes over loopback with no latency to a measured `run_etl`
into a fresh store: extract over HTTP, raw staging, normalize (scrub, classify), stage, load into a
real DuckDB file. The same response bytes are then parsed with `json.loads` and `orjson.loads`.
It prints timeline records/s of the run, both parse rates and their ratios, by wall clock and by the
process's CPU time (the simulator's threads included; on a shared machine the CPU ratios are the
steadier figure), and the peak RSS.

Run: .venv/bin/python bench/etl_throughput.py [--fraction 0.1] [--records-per-job 0] [--profile out.prof]
(The store runs with `warehouse.memory_limit` = BENCH_DUCKDB_MEMORY_LIMIT, default 256MB: without a cap
DuckDB's buffer cache keeps the pages of the growing tables, up to 80% of RAM.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DAYS, BUILDS_PER_DAY = 90, 50


def _prerendered(server: Any) -> dict[tuple[str, str], Any]:
    """Wrap the server's router so each (method, path) is rendered once and then served from memory."""
    cache: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()
    route = server.handle

    def handle(method: str, raw_path: str, headers: Any) -> tuple[Any, float]:
        key = (method, raw_path)
        hit = cache.get(key)
        if hit is None:
            response, _ = route(method, raw_path, headers)
            with lock:
                hit = cache.setdefault(key, response)
        return hit, 0.0  # no latency: the bench measures the ETL, not the network

    server.handle = handle
    return cache


def _settings(work: Path, url: str, projects: list[str], name: str) -> Any:
    from etl.config import PROJECT_ROOT, load_config

    cfg = work / f"{name}.yaml"
    cfg.write_text(json.dumps({
        "sources": [{"kind": "azure_devops", "name": "sim", "organization_url": url, "projects": projects,
                     "auth": "none", "backoff_seconds": 0, "max_backoff_seconds": 0,
                     "initial_lookback_days": DAYS + 2}],
        "warehouse": {"kind": "local", "path": str(work / f"{name}.duckdb"),
                      "memory_limit": os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT", "256MB")},
        "staging": {"dir": str(work / f"{name}-staging")},
        "classification": {"rules": str(PROJECT_ROOT / "config" / "failure-rules.yaml")},
        "privacy": {"pseudonymization_key": "env://ETL_BENCH_PSEUDONYM_KEY"}}))
    return load_config(cfg)


def child(fraction: float, records_per_job: int, profile: str | None) -> None:
    import orjson

    from etl.run import run_etl
    from etl.simulator import start_server
    from etl.warehouse.local import LocalWarehouse

    os.environ.setdefault("ETL_BENCH_PSEUDONYM_KEY", "bench-pseudonym-key-0123456789")
    work = Path(tempfile.mkdtemp(prefix="etl-bench-"))
    days = max(1, round(DAYS * fraction))
    with start_server(seed=5, days=days, builds_per_day=BUILDS_PER_DAY, records_per_job=records_per_job) as srv:
        cache = _prerendered(srv)
        warm = run_etl(_settings(work, srv.url, srv.projects, "warm"))  # renders every response once
        assert not warm.failed, warm.markdown()
        settings = _settings(work, srv.url, srv.projects, "bench")
        t0, c0 = time.perf_counter(), time.process_time()
        if profile:
            import cProfile

            summary: Any = None

            def go() -> None:
                nonlocal summary
                summary = run_etl(settings)

            cProfile.runctx("go()", globals(), locals(), profile)
        else:
            summary = run_etl(settings)
        etl_s, etl_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert not summary.failed, summary.markdown()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    bodies = [r.data for r in cache.values() if r.content_type.startswith("application/json")]
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    records = int(wh.execute_sql('SELECT count(*) FROM "TimelineRecords"')[0][0])
    builds = int(wh.execute_sql('SELECT count(*) FROM "TimelineBuilds"')[0][0])
    wh.close()
    rates, cpu_rates = {}, {}
    for name, loads in (("json", json.loads), ("orjson", orjson.loads)):
        best = best_cpu = float("inf")
        for _ in range(3):  # best of three: the parse is short, and the machine is shared
            t0, c0 = time.perf_counter(), time.process_time()
            for body in bodies:
                loads(body)
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        rates[name], cpu_rates[name] = records / best, records / best_cpu
    print(json.dumps({"days": days, "builds": builds, "records": records, "etl_s": etl_s,
                      "etl_rate": records / etl_s, "json_rate": rates["json"], "orjson_rate": rates["orjson"],
                      "etl_cpu_s": etl_cpu, "etl_cpu_rate": records / etl_cpu, "json_cpu_rate": cpu_rates["json"],
                      "orjson_cpu_rate": cpu_rates["orjson"],
                      "bytes_mb": sum(map(len, bodies)) >> 20, "requests": len(cache), "peak_rss_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0,
                        help=f"share of the {DAYS}-day history to simulate (0.1: {DAYS // 10} days)")
    parser.add_argument("--records-per-job", type=int, default=0, help="extra steps per job (bigger timelines)")
    parser.add_argument("--profile", help="write a cProfile of the measured run to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.fraction, args.records_per_job, args.profile)
        return
    cmd = [sys.executable, __file__, "--child", "--fraction", str(args.fraction),
           "--records-per-job", str(args.records_per_job)] + (["--profile", args.profile] if args.profile else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode:
        sys.exit(out.stderr)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{r['days']} days × {BUILDS_PER_DAY} builds/day: {r['builds']:,} builds, {r['records']:,} timeline "
          f"records, {r['requests']:,} responses ({r['bytes_mb']} MB)")
    print(f"{'':34} {'wall clock':>28}   {'CPU time of the process':>28}")
    print(f"  {'run_etl (extract to load)':32} {r['etl_rate']:>12,.0f} records/s ({r['etl_s']:6.1f} s)   "
          f"{r['etl_cpu_rate']:>12,.0f} records/s ({r['etl_cpu_s']:6.1f} s)")
    for name in ("json", "orjson"):
        print(f"  {name + '.loads of the same bytes':32} {r[name + '_rate']:>12,.0f} records/s  ratio "
              f"{r['etl_rate'] / r[name + '_rate']:.3f}x   {r[name + '_cpu_rate']:>12,.0f} records/s  ratio "
              f"{r['etl_cpu_rate'] / r[name + '_cpu_rate']:.3f}x")
    print(f"  peak RSS: {r['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
