"""Preparing builds for staging in one process: `prepare_item` beside `json.loads` of the same timelines, and raw staging's scans.

Extracts builds from the simulator over loopback as a run does (each timeline outlined and kept as its body;
about 1,900 timeline records per build, as `bench/etl_throughput.py`). Then, with the run's garbage-collector
settings and a scrubber that has seen the builds once (so it knows their names, as it does deep in a run), it
times (CPU seconds, best of `--repeat`):

* `prepare_item` of every build: normalizing, raw staging, the privacy policy and typing, all the staging
  thread does for a build before writing it. In µs a timeline record, and as a ratio to `json.loads` of the
  same timeline bodies;
* the whole path but extraction: `prepare_item` of every build, each written into one staged batch, committed,
  and loaded by the run's `load_facts` into a fresh store with the run's load memory limit, one after the other
  on one thread (the process's CPU seconds, DuckDB's threads included, and the wall clock);
* each scan raw staging makes of a timeline's bytes (`etl.privacy_bytes`): the suspects in the records joined,
  then the detectors' gate and the learned names over the text as scanned. In MB/s, beside `bytes.count` of
  one byte over the same bytes, a pass at memory speed.

This is the staging thread's share of the throughput bench without the threads beside it, the server or the
store: a change to normalizing or scrubbing shows here in a minute. Under `valgrind --tool=callgrind` it
counts instructions, which do not move with the machine's load (docs/benchmarks.md).

Run: .venv/bin/python bench/prepare_build.py [--builds 20] [--records-per-job 400] [--repeat 5] [--bundles FILE]
    [--without-raw-staging]
(`--bundles FILE`: the extracted builds are read from FILE when it exists, else written to it: a run under
callgrind then skips the extraction, `--repeat 1`. `--without-raw-staging`: the timed passes stage no raw
line, a design the ETL does not have, to show what staging less would save; the scrubber has still learned
the builds' names in the untimed first pass.)
"""

from __future__ import annotations

import functools
import gc
import json
import pickle
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from normalize_validation import arguments, best, extract


def main() -> None:
    """Extract, time `prepare_item` and the scans, print µs a record, MB/s and the ratios."""
    args = arguments(__doc__, ("--bundles", {"type": Path, "help": "pickled builds: read if it exists, else written"}),
                     ("--without-raw-staging", {"action": "store_true", "help": "time a path that stages no raw line"}))

    from etl.classify import Classifier
    from etl.collector import RUN_THRESHOLDS
    from etl.normalize.context import NormalizeContext
    from etl.privacy import Scrubber, apply_policy
    from etl.privacy_bytes import _SEPARATOR, _suspect
    from etl.sources.base import Item
    from etl.stage.prepare import prepare_item

    if args.bundles is not None and args.bundles.exists():
        blob = args.bundles.read_bytes()  # a file this bench wrote (a pickle runs code: only one's own)
    else:
        blob = pickle.dumps(extract(args.builds, args.records_per_job, outlined=True))
        if args.bundles is not None:
            args.bundles.write_bytes(blob)
    bodies = [bytes(body) for bundle in pickle.loads(blob) for body in bundle.encoded.values()]
    scrubber = Scrubber(b"bench-pseudonym-key-0123456789")
    ctx = NormalizeContext("bench", "org", datetime(2026, 11, 23, 6), scrubber, Classifier(), lambda *a: None,
                           columns=True)
    policy = functools.partial(apply_policy, scrubber)
    scanned: list[bytes] = []  # the texts raw staging scans for the detectors and names, as it scans them
    touched_spans = Scrubber.touched_spans

    def recording(self: Scrubber, joined: bytes) -> list[tuple[int, int]]:
        scanned.append(joined)
        return touched_spans(self, joined)

    def prepare_each(bundles: list[Any]) -> Iterator[Any]:
        return (prepare_item(ctx, Item(f"build {i}", bundle), policy) for i, bundle in enumerate(bundles))

    def prepare_all(bundles: list[Any]) -> list[Any]:
        return list(prepare_each(bundles))

    Scrubber.touched_spans = recording  # type: ignore[method-assign]
    try:
        prepared = prepare_all(pickle.loads(blob))  # the scrubber learns the builds' names here
    finally:
        Scrubber.touched_spans = touched_spans  # type: ignore[method-assign]
    records = sum(p.typed["TimelineRecords"].num_rows for p in prepared if "TimelineRecords" in p.typed)
    timelines = [s for s in scanned if s.count(b"\n") > 1000]  # a whole timeline's, not a build's few texts
    joined = [_SEPARATOR.join(_records_of(body)) for body in bodies]

    if args.without_raw_staging:
        import etl.normalize.batch

        etl.normalize.batch.raw_for_staging = lambda *_: None  # type: ignore[assignment]
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)  # as `ci-telemetry etl` runs
    unpickled: list[list[Any]] = []

    def fresh() -> None:  # each repetition prepares new bundles: raw staging consumes them
        unpickled.append(pickle.loads(blob))

    prepare_seconds = best(lambda: prepare_all(unpickled.pop()), args.repeat, setup=fresh)
    loads_seconds = best(lambda: [json.loads(body) for body in bodies], args.repeat)
    print(f"{len(prepared)} builds, {records:,} timeline records, {sum(map(len, bodies)) / 1e6:.1f} MB of timeline "
          f"bodies; CPU seconds, best of {args.repeat}")
    print(f"  prepare_item          {prepare_seconds * 1e6 / records:6.2f} µs a record "
          f"({prepare_seconds:.3f} s)  ratio to json.loads of the timelines {loads_seconds / prepare_seconds:.3f}x")
    print(f"  json.loads            {loads_seconds * 1e6 / records:6.2f} µs a record ({loads_seconds:.3f} s)")
    work = Path(mkdtemp(prefix="prepare-build-bench-"))
    try:
        runs = []
        for i in range(args.repeat):
            runs.append(staged_and_loaded(prepare_each(pickle.loads(blob)), work / str(i)))
        cpu, wall, writes, load = min(runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"  prepared, staged, loaded {cpu * 1e6 / records:6.2f} µs a record of CPU ({cpu:.3f} s; wall {wall:.3f} s)"
          f"  ratio to json.loads {loads_seconds / cpu:.3f}x (wall {loads_seconds / wall:.3f}x)")
    print(f"    of which the staged writes and commit {writes * 1e6 / records:5.2f} µs a record ({writes:.3f} s), "
          f"the load {load * 1e6 / records:5.2f} ({load:.3f} s)")
    scans = [("suspects, joined records", _suspect(), joined),
             ("detectors' gate, scanned", scrubber._batch_gate, timelines),
             ("learned names, scanned", scrubber._name_pattern, timelines)]
    print(f"  raw staging's scans of each timeline ({len(scrubber.known_names())} names learned):")
    for label, pattern, texts in scans:
        if pattern is None:
            continue
        size = sum(map(len, texts)) / 1e6
        scan = best(lambda p=pattern, t=texts: [list(p.finditer(x)) for x in t], args.repeat)
        count = best(lambda t=texts: [x.count(b"\x01") for x in t], args.repeat)
        print(f"    {label:<26} {size / scan:7.0f} MB/s ({scan * 1e6 / records:5.2f} µs a record)  "
              f"bytes.count {size / count:6.0f} MB/s")


def staged_and_loaded(prepared_builds: Any, work: Path) -> tuple[float, float, float, float]:
    """(CPU, wall, the staged writes' CPU, the load's CPU) seconds of preparing (*prepared_builds*: a lazy
    `prepare_item` of each build), staging and loading the builds as one batch into a fresh store under *work*.
    The process's CPU time counts DuckDB's threads."""
    from etl.config import DEFAULT_LOAD_MEMORY_LIMIT
    from etl.load import load_facts
    from etl.stage.outbox import BatchStatus, Manifest, Outbox, utc_now_iso
    from etl.warehouse.local import LocalWarehouse

    outbox = Outbox(work / "staging")  # the rows come typed, the policy applied: the outbox needs none
    wh = LocalWarehouse(work / "store.duckdb", memory_limit=DEFAULT_LOAD_MEMORY_LIMIT)
    try:
        wh.apply_schema()
        c0, t0 = time.process_time(), time.perf_counter()
        batch = outbox.start(Manifest("bench", "ado", "org", "p", None, None, utc_now_iso()))
        writes = 0.0
        for prepared in prepared_builds:
            w0 = time.process_time()
            batch.add_typed(prepared.raw_line, prepared.typed)
            writes += time.process_time() - w0
        w0 = time.process_time()
        manifest = batch.commit(BatchStatus.PENDING)
        c1 = time.process_time()
        loaded = load_facts(wh, outbox, manifest)
        c2 = time.process_time()
        if loaded != manifest.counts:  # a figure for rows that never reached the store would mean nothing
            raise SystemExit(f"prepare_build: the store loaded {loaded}, the batch staged {manifest.counts}")
        return c2 - c0, time.perf_counter() - t0, writes + c1 - w0, c2 - c1
    finally:
        wh.close()


def _records_of(body: bytes) -> list[Any]:
    from etl.normalize.timeline_columns import parsed_body

    parsed = parsed_body(body)
    return parsed[1] if parsed else []


if __name__ == "__main__":
    main()
