"""ETL throughput and memory on the real path: `run_etl` against the simulator, beside json.loads of the same bytes.

Three processes, so the figures are the ETL's alone:

* the server: starts the simulated organization (90 days × 50 builds/day, scaled by `--fraction`),
  renders every response once (a warm-up `run_etl` records the bytes of each URL it asks for), then
  serves those pre-rendered bytes over loopback with no latency, and writes the JSON bodies to a file;
* the measured process: only `run_etl` into a fresh store — extract over HTTP, raw staging,
  normalize (scrub, classify), stage, load into a real DuckDB file. Its own wall and CPU time, its
  peak RSS (`ru_maxrss`, taken before anything else is read) and RSS sampled with psutil (the peak
  in the first and in the second half of the builds: flat when memory is bounded by a batch, not by
  the history). Then, in the same process, the store's load alone (the run's staged batches loaded again
  into a fresh store: what DuckDB costs with nothing beside it), and `json.loads` and `orjson.loads` of
  the same bytes;
* this one, which starts both and prints.

The default shape is the issue's users' (.NET's CI): `--records-per-job 400` gives about 1,900
timeline records per build (the simulator's default, 0, about 48). `--fraction 0.1` is about 0.95M
timeline records. Several fractions (`--fraction 0.02 0.04`) run one after the other, so the peak
RSS of two history lengths can be compared.

Run: .venv/bin/python bench/etl_throughput.py [--fraction 0.02 [0.04]] [--workers 2] [--records-per-job 400] [--profile out.prof]
(`--workers N`: `staging.workers` of the measured run; their CPU time and memory are printed beside the main process's.)
(`BENCH_KEEP_WORK=1`: the store and the outbox are kept, their folder named on stderr.)
(`BENCH_DUCKDB_JSON=1`: also times DuckDB's own JSON reader unnesting the records of the staged raw lines.)
(`BENCH_LOAD_IN_LINE=1`: `staging.load_beside_staging: false`, each batch loaded before the next one stages.)
(The store runs with `warehouse.memory_limit` = BENCH_DUCKDB_MEMORY_LIMIT and `warehouse.load_memory_limit` =
BENCH_DUCKDB_LOAD_MEMORY_LIMIT, `null` for DuckDB's default; unset: those of etl.config.)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DAYS, BUILDS_PER_DAY = 90, 50
RECORDS_PER_JOB = 400
ROOT = Path(__file__).resolve().parent.parent


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

    warehouse: dict[str, Any] = {"kind": "local", "path": str(work / f"{name}.duckdb")}
    for setting in ("memory_limit", "load_memory_limit"):
        value = os.environ.get(f"BENCH_DUCKDB_{setting.upper()}")
        if value:
            warehouse[setting] = None if value == "null" else value
    cfg = work / f"{name}.yaml"
    cfg.write_text(json.dumps({
        "sources": [{"kind": "azure_devops", "name": "sim", "organization_url": url, "projects": projects,
                     "auth": "none", "backoff_seconds": 0, "max_backoff_seconds": 0,
                     "initial_lookback_days": DAYS + 2}],
        "warehouse": warehouse,
        "staging": {"dir": str(work / f"{name}-staging"), "workers": int(os.environ.get("BENCH_STAGING_WORKERS", "0")),
                    **({"load_beside_staging": False} if os.environ.get("BENCH_LOAD_IN_LINE") else {})},
        "classification": {"rules": str(PROJECT_ROOT / "config" / "failure-rules.yaml")},
        "privacy": {"pseudonymization_key": "env://ETL_BENCH_PSEUDONYM_KEY"}}))
    return load_config(cfg)


def serve(work: Path, fraction: float, records_per_job: int) -> None:
    """The server process: render everything once, say where it listens, serve until stdin closes."""
    from datetime import timedelta

    from etl.simulator import start_server
    from etl.sources.azure_devops.client import client_for_source
    from etl.sources.azure_devops.extract import AzureDevOpsExtractor
    from etl.timeutil import utc_now

    days = max(1, round(DAYS * fraction))
    with start_server(seed=5, days=days, builds_per_day=BUILDS_PER_DAY, records_per_job=records_per_job) as srv:
        cache = _prerendered(srv)
        # Warm-up: read every build's details once, as the ETL's extractor does (no staging, no load).
        cfg = _settings(work, srv.url, srv.projects, "warm").sources[0]
        client = client_for_source(cfg)
        extractor = AzureDevOpsExtractor(client, page_size=cfg.page_size, test_results=cfg.test_results,
                                         metrics_artifacts=cfg.metrics_artifacts,
                                         max_parallel_requests=cfg.max_parallel_requests)
        for project in srv.projects:
            for page in extractor.list_builds(project, utc_now() - timedelta(days=DAYS + 2)):
                for _ in extractor.iter_bundles(project, page):
                    pass
        client.close()
        bodies = [r.data for r in cache.values() if r.content_type.startswith("application/json")]
        with (work / "bodies.pickle").open("wb") as fh:
            pickle.dump(bodies, fh, protocol=pickle.HIGHEST_PROTOCOL)
        del bodies
        print(json.dumps({"url": srv.url, "projects": srv.projects, "days": days, "requests": len(cache)}),
              flush=True)
        sys.stdin.read()  # the bench closes it when the measured run is over


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _breakdown() -> dict[str, int]:
    """What the RSS is made of (MB): anonymous and file-backed (shared libraries) pages, and glibc's heap in use
    and free in its arenas (`mallinfo2`; Linux glibc only; free pages `malloc_trim` returned still count as
    free there, so that figure is an upper bound of what glibc holds resident). Anonymous memory beyond
    glibc's is Python's pymalloc arenas and DuckDB's and Arrow's own allocators, not split further."""
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile"):
                out[name] = int(value.split()[0]) >> 10
    except OSError:
        return out
    libc = ctypes.CDLL(None)
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        out["malloc_used"] = (info.uordblks + info.hblkhd) >> 20
        out["malloc_free"] = info.fordblks >> 20
    return out


class _Sampler(threading.Thread):
    """RSS of this process every 50 ms, with the number of builds extracted so far."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process()
        self.builds = 0
        self.phase = "stage"
        self.samples: list[tuple[int, int]] = []
        self.peaks: dict[str, int] = {}
        #: What the RSS was made of at its highest sample (MB): see `_breakdown`.
        self.at_peak: dict[str, int] = {}
        self._peak_rss = 0
        #: RSS (MB) as each batch finished loading: flat when memory is bounded by a batch.
        self.after_loads: list[int] = []
        #: With staging workers: their CPU seconds by pid, and the highest RSS and PSS of this process and theirs.
        self.child_cpu: dict[int, float] = {}
        self.child_pss: dict[int, int] = {}
        self.children: list[Any] = []
        #: Wall-clock seconds spent loading staged batches (the rest of the run extracts and stages).
        self.load_s = 0.0
        self.tree_peak = self.tree_pss_peak = 0
        self.done = threading.Event()

    def progress(self, what: str, n: int) -> None:
        if what == "builds":
            self.builds += n

    def _children(self, tick: int) -> int:
        """RSS (bytes) of the staging workers and their fork server; their CPU time and PSS kept per process.

        Listing the children and reading PSS (all of smaps) cost this process CPU: once a second only."""
        import psutil

        if tick % 20 == 0:
            self.children = self.process.children(recursive=True)
        rss = 0
        for child in self.children:
            try:
                rss += child.memory_info().rss
                times = child.cpu_times()
                self.child_cpu[child.pid] = times.user + times.system
                if tick % 20 == 0:
                    self.child_pss[child.pid] = child.memory_full_info().pss
            except psutil.Error:
                continue  # exited between listing and reading
        return rss

    def run(self) -> None:
        import pyarrow as pa

        tick = 0
        while not self.done.wait(0.05):
            children = self._children(tick)
            own = self.process.memory_info().rss
            if children:
                self.tree_peak = max(self.tree_peak, own + children)
                if tick % 20 == 0:
                    self.tree_pss_peak = max(self.tree_pss_peak, self.process.memory_full_info().pss
                                             + sum(self.child_pss.values()))
            tick += 1
            rss = own
            self.samples.append((self.builds, rss))
            if rss > self._peak_rss:
                self._peak_rss = rss
                self.at_peak = _breakdown()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss >> 20)
            self.peaks["arrow"] = max(self.peaks.get("arrow", 0), pa.total_allocated_bytes() >> 20)

    def loading(self) -> None:
        """Count the samples taken while a batch loads as the load step's (the rest is extract + stage)."""
        from etl.load_step import BatchLoader

        load = BatchLoader.load

        def timed(loader: Any, *args: Any, **kwargs: Any) -> Any:
            self.phase = "load"
            started = time.perf_counter()
            try:
                return load(loader, *args, **kwargs)
            finally:
                self.phase = "stage"
                self.load_s += time.perf_counter() - started
                self.after_loads.append(self.process.memory_info().rss >> 20)

        BatchLoader.load = timed  # type: ignore[method-assign]

    def halves(self) -> tuple[int, int]:
        """Peak RSS (MB) while the first half of the builds was read, and after."""
        half = self.builds / 2
        first = [rss for b, rss in self.samples if b <= half] or [0]
        second = [rss for b, rss in self.samples if b > half] or [0]
        return max(first) >> 20, max(second) >> 20


def measure(work: Path, url: str, projects: list[str], profile: str | None) -> None:
    """The measured process: run_etl alone, then json/orjson of the same bytes; one JSON line on stdout."""
    import orjson
    import psutil

    from etl.run import run_etl
    from etl.warehouse.local import LocalWarehouse

    # What the ETL's imports hold before it reads anything (the run imports DuckDB, pyarrow and what
    # else it needs on the way: those count in the peak, not here).
    imports_mb = psutil.Process().memory_info().rss >> 20
    settings = _settings(work, url, projects, "bench")
    from etl.stage.memory import defer_pandas

    defer_pandas()  # as `ci-telemetry etl` does on the local store, before any thread starts
    sampler = _Sampler()
    sampler.loading()
    sampler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    if profile:
        import cProfile

        summary: Any = None

        def go() -> None:
            nonlocal summary
            summary = run_etl(settings, progress=sampler.progress)

        cProfile.runctx("go()", globals(), locals(), profile)
    else:
        summary = run_etl(settings, progress=sampler.progress)
    etl_s, etl_cpu = time.perf_counter() - t0, time.process_time() - c0
    etl_sys = resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0
    sampler.done.set()
    sampler.join()
    workers_cpu = sum(sampler.child_cpu.values())  # sampled every 50 ms until the workers stopped
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    assert not summary.failed, summary.markdown()
    batches = sum(o.batches for o in summary.outcomes)
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    records = int(wh.execute_sql('SELECT count(*) FROM "TimelineRecords"')[0][0])
    builds = int(wh.execute_sql('SELECT count(*) FROM "TimelineBuilds"')[0][0])
    wh.close()
    load_alone_s, load_alone_cpu, load_alone_records = load_alone(settings, work / "alone.duckdb")
    duckdb_json = duckdb_json_records(settings) if os.environ.get("BENCH_DUCKDB_JSON") else None
    with (work / "bodies.pickle").open("rb") as fh:
        bodies = pickle.load(fh)
    rates, cpu_rates = {}, {}
    for name, loads in (("json", json.loads), ("orjson", orjson.loads)):
        best = best_cpu = float("inf")
        for _ in range(3):  # best of three: the parse is short, and the machine is shared
            t0, c0 = time.perf_counter(), time.process_time()
            for body in bodies:
                loads(body)
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        rates[name], cpu_rates[name] = records / best, records / best_cpu
    first, second = sampler.halves()
    print(json.dumps({"builds": builds, "records": records, "batches": batches, "etl_s": etl_s,
                      "etl_rate": records / etl_s, "json_rate": rates["json"], "orjson_rate": rates["orjson"],
                      "etl_cpu_s": etl_cpu, "etl_sys_s": etl_sys, "etl_cpu_rate": records / etl_cpu, "json_cpu_rate": cpu_rates["json"],
                      "load_alone_s": load_alone_s, "load_alone_cpu_s": load_alone_cpu, "load_alone_records": load_alone_records, "duckdb_json": duckdb_json,
                      "workers": settings.staging.workers, "workers_cpu_s": workers_cpu, "load_s": sampler.load_s,
                      "load_beside_staging": settings.staging.load_beside_staging,
                      "tree_peak_rss_mb": sampler.tree_peak >> 20, "tree_peak_pss_mb": sampler.tree_pss_peak >> 20,
                      "orjson_cpu_rate": cpu_rates["orjson"], "bytes_mb": sum(map(len, bodies)) >> 20,
                      "peak_rss_mb": peak, "peak_first_half_mb": first, "peak_second_half_mb": second,
                      "peaks": sampler.peaks, "at_peak": sampler.at_peak, "imports_mb": imports_mb,
                      "after_loads_mb": sampler.after_loads,
                      "memory_limit": settings.warehouse.memory_limit,
                      "load_memory_limit": settings.warehouse.load_memory_limit,
                      "load_average": os.getloadavg()[0]}))


def load_alone(settings: Any, path: Path) -> tuple[float, float, int]:
    """(wall, CPU seconds, TimelineRecords rows) of the store's load alone: the run's staged batches (those the
    outbox still keeps: `staging.keep_loaded_batches`) loaded again, in their order, by
    the `load_facts` the run calls, into a fresh store with the run's load memory limit, nothing beside it.

    It is the floor under the run's wall clock on one core: what DuckDB's inserts and commits cost, with no
    extraction or staging to share the machine with."""
    from etl.load import load_facts
    from etl.stage.outbox import BatchStatus, Outbox
    from etl.warehouse.local import LocalWarehouse

    outbox = Outbox(settings.path(settings.staging.dir))  # read only: no rows are written, so no policy
    manifests = outbox.batches(BatchStatus.LOADED)
    wh = LocalWarehouse(path, memory_limit=settings.warehouse.load_memory_limit or settings.warehouse.memory_limit)
    try:
        wh.apply_schema()
        t0, c0 = time.perf_counter(), time.process_time()
        for manifest in manifests:
            load_facts(wh, outbox, manifest)
        records = sum(m.counts.get("TimelineRecords", 0) for m in manifests)
        return time.perf_counter() - t0, time.process_time() - c0, records
    finally:
        wh.close()


#: The timeline record fields `etl.normalize.timeline_columns` reads, as DuckDB's JSON reader is told to read them.
_RECORD_COLUMNS = ("id VARCHAR, parentId VARCHAR, type VARCHAR, name VARCHAR, \"order\" BIGINT, state VARCHAR, "
                   "result VARCHAR, startTime VARCHAR, finishTime VARCHAR, workerName VARCHAR, errorCount INTEGER, "
                   "warningCount INTEGER, attempt INTEGER, log STRUCT(id BIGINT, url VARCHAR), "
                   "task STRUCT(id VARCHAR, name VARCHAR, version VARCHAR)")


def duckdb_json_records(settings: Any) -> dict[str, float]:
    """(`BENCH_DUCKDB_JSON=1`) DuckDB's own JSON reader on the run's staged raw lines, unnesting every timeline
    record with the fields the ETL reads, and counting them: what normalizing inside DuckDB would start from."""
    import duckdb

    files = sorted(str(p) for p in settings.path(settings.staging.dir).glob("outbox/*/raw.jsonl"))
    con = duckdb.connect()
    con.execute("SET threads = 2")
    columns = "{'timelines': 'STRUCT(records STRUCT(" + _RECORD_COLUMNS + ")[])[]'}"
    t0, c0 = time.perf_counter(), time.process_time()
    count = con.sql(
        "SELECT count(*) FROM (SELECT unnest(tl.records) FROM (SELECT unnest(timelines) AS tl FROM "
        f"read_json($files, columns = {columns}, format = 'newline_delimited', maximum_object_size = 1000000000)))",
        params={"files": files}).fetchall()[0][0]
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return {"records": count, "seconds": seconds, "cpu_s": cpu,
            "mb": sum(Path(f).stat().st_size for f in files) >> 20}


def bench(fraction: float, records_per_job: int, profile: str | None) -> dict[str, Any]:
    """One fraction: start the server, run the measured process against it, stop the server."""
    work = Path(tempfile.mkdtemp(prefix="etl-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "ETL_BENCH_PSEUDONYM_KEY": os.environ.get("ETL_BENCH_PSEUDONYM_KEY", "bench-pseudonym-key-0123456789")}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(work), "--fraction", str(fraction),
                               "--records-per-job", str(records_per_job)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert server.stdout is not None and server.stdin is not None
        line = server.stdout.readline()
        if not line:
            sys.exit(f"the simulator process ended before serving (exit {server.wait()})")
        ready = json.loads(line)
        cmd = [sys.executable, __file__, "--measure", str(work), "--url", ready["url"],
               "--projects", ",".join(ready["projects"])] + (["--profile", profile] if profile else [])
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode:
            sys.exit(out.stderr)
        return {**ready, **json.loads(out.stdout.strip().splitlines()[-1])}
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=60)
        if os.environ.get("BENCH_KEEP_WORK"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(r: dict[str, Any]) -> None:
    print(f"{r['days']} days × {BUILDS_PER_DAY} builds/day: {r['builds']:,} builds, {r['records']:,} timeline "
          f"records ({r['records'] / max(r['builds'], 1):,.0f} per build), {r['batches']} batches, "
          f"{r['requests']:,} responses ({r['bytes_mb']} MB); load average {r['load_average']:.1f}")
    print(f"{'':34} {'wall clock':>28}   {'CPU time of the ETL process':>28}")
    print(f"  {'run_etl (extract to load)':32} {r['etl_rate']:>12,.0f} records/s ({r['etl_s']:6.1f} s)   "
          f"{r['etl_cpu_rate']:>12,.0f} records/s ({r['etl_cpu_s']:6.1f} s, {r['etl_sys_s']:.1f} s of it system time)")
    where = "on the load thread, beside staging" if r["load_beside_staging"] else "in line, between stagings"
    print(f"  loading the staged batches: {r['load_s']:.1f} s wall clock ({where})")
    alone, alone_cpu = r["load_alone_records"] / r["load_alone_s"], r["load_alone_records"] / r["load_alone_cpu_s"]
    print(f"  {'the same load alone':32} {alone:>12,.0f} records/s  ratio {alone / r['json_rate']:.3f}x   "
          f"{alone_cpu:>12,.0f} records/s  ratio {alone_cpu / r['json_cpu_rate']:.3f}x  (the staged batches "
          f"into a fresh store, nothing beside: {r['load_alone_s']:.1f} s)")
    if r.get("duckdb_json"):
        d = r["duckdb_json"]
        print(f"  DuckDB's read_json of the staged raw lines ({d['mb']} MB): {d['records']:,} timeline records "
              f"unnested in {d['seconds']:.1f} s wall clock, {d['cpu_s']:.1f} s of CPU on 2 threads")
    if r["workers"]:
        cpu = r["etl_cpu_s"] + r["workers_cpu_s"]
        print(f"  with {r['workers']} staging workers: {cpu:.1f} s of CPU in all ({r['workers_cpu_s']:.1f} s theirs), "
              f"{r['records'] / cpu:,.0f} records per CPU second; the CPU-time columns count the main process only")
    for name in ("json", "orjson"):
        print(f"  {name + '.loads of the same bytes':32} {r[name + '_rate']:>12,.0f} records/s  ratio "
              f"{r['etl_rate'] / r[name + '_rate']:.3f}x   {r[name + '_cpu_rate']:>12,.0f} records/s  ratio "
              f"{r['etl_cpu_rate'] / r[name + '_cpu_rate']:.3f}x")
    print(f"  peak RSS of the ETL process: {r['peak_rss_mb']} MB (sampled: {r['peak_first_half_mb']} MB in the "
          f"first half of the builds, {r['peak_second_half_mb']} MB in the second; "
          f"{r['peaks'].get('stage', 0)} MB extracting and staging, {r['peaks'].get('load', 0)} MB loading, "
          f"Arrow's pool at most {r['peaks'].get('arrow', 0)} MB; {r['imports_mb']} MB after importing etl.run; "
          f"DuckDB load_memory_limit {r['load_memory_limit']}, memory_limit {r['memory_limit']})")
    if r.get("at_peak"):
        p = r["at_peak"]
        print(f"  at the highest sample: {p.get('RssAnon', '?')} MB anonymous, {p.get('RssFile', '?')} MB file-backed "
              "(shared libraries); "
              f"glibc malloc {p.get('malloc_used', '?')} MB in use, at most {p.get('malloc_free', '?')} MB free in "
              "its arenas")
    print(f"  RSS after each batch loaded: {', '.join(f'{mb} MB' for mb in r['after_loads_mb'])}")
    if r["workers"]:
        print(f"  with the staging workers and their fork server: at most {r['tree_peak_rss_mb']} MB RSS in all "
              f"(pages they share counted in each), {r['tree_peak_pss_mb']} MB PSS (shared pages split between them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, nargs="+", default=[0.02],
                        help=f"share of the {DAYS}-day history to simulate (0.1: {DAYS // 10} days); several: "
                             "one run each")
    parser.add_argument("--records-per-job", type=int, default=RECORDS_PER_JOB,
                        help="extra steps per job (400: about 1,900 timeline records per build, as .NET's CI)")
    parser.add_argument("--profile", help="write a cProfile of the measured run to this file")
    parser.add_argument("--workers", type=int, default=0, help="staging.workers of the measured run (default 0)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--projects", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.fraction[0], args.records_per_job)
        return
    if args.measure:
        measure(args.measure, args.url, args.projects.split(","), args.profile)
        return
    runs = []
    os.environ["BENCH_STAGING_WORKERS"] = str(args.workers)
    for fraction in args.fraction:
        runs.append(bench(fraction, args.records_per_job, args.profile))
        report(runs[-1])
    if len(runs) > 1:
        print("peak RSS by history: " + ", ".join(
            f"{r['records']:,} records in {r['batches']} batches: {r['peak_rss_mb']} MB" for r in runs))


if __name__ == "__main__":
    main()
