"""Validation at the boundary: a model per record beside one `TypeAdapter` call per list, on the users' shape.

Extracts builds from the simulator over loopback (about 1,900 timeline records per build, as
`bench/etl_throughput.py`), then, in this one process, times (CPU seconds, best of `--repeat`):

* validating every timeline record and test result with its pydantic model, one at a time (what
  normalize did before), beside one `TIMELINE_RECORDS` / `TEST_RESULTS` call per list (what it does now);
* `normalize_timelines` and `normalize_results` whole, on the list path and with the list validator
  replaced by one that rejects every record (so each goes through the model, the reference path;
  slower than the old code was, as it also dumps each model and builds every rejection);
* staging's typing (`to_arrow`) of the normalized rows.

Prints the rates and the ratios of the same run. No wall-clock assertions anywhere: this is a bench.

Run: .venv/bin/python bench/normalize_validation.py [--builds 20] [--records-per-job 400] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

RECORDS_PER_JOB = 400


def extract(builds: int, records_per_job: int, *, outlined: bool = False) -> list[Any]:
    """Bundles of *builds* simulated builds, read by the ETL's own extractor (*outlined*: as a run reads them, each
    timeline outlined and kept as its body)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from etl_throughput import _settings

    from etl.simulator import start_server
    from etl.sources.azure_devops.client import client_for_source
    from etl.sources.azure_devops.extract import AzureDevOpsExtractor
    from etl.timeutil import utc_now

    bundles: list[Any] = []
    with start_server(seed=5, days=1, builds_per_day=builds, records_per_job=records_per_job) as srv:
        cfg = _settings(Path(mkdtemp(prefix="normalize-bench-")), srv.url, srv.projects, "bench").sources[0]
        client = client_for_source(cfg)
        extractor = AzureDevOpsExtractor(client, page_size=cfg.page_size, test_results=cfg.test_results,
                                         metrics_artifacts=cfg.metrics_artifacts,
                                         max_parallel_requests=cfg.max_parallel_requests, timelines_outlined=outlined)
        for project in srv.projects:
            for page in extractor.list_builds(project, utc_now() - timedelta(days=3)):
                bundles.extend(extractor.iter_bundles(project, page))
        client.close()
    return bundles


def best(fn: Callable[[], Any], repeat: int, setup: Callable[[], None] | None = None) -> float:
    """The least CPU time of *repeat* calls (the machine is shared), *setup* run untimed before each."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def arguments(doc: str, *extra: tuple[str, dict[str, Any]]) -> argparse.Namespace:
    """The options of a bench over extracted builds (`--builds`, `--records-per-job`, `--repeat`, and *extra*
    as (flag, `add_argument` keywords)), parsed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--records-per-job", type=int, default=RECORDS_PER_JOB)
    parser.add_argument("--repeat", type=int, default=5)
    for flag, options in extra:
        parser.add_argument(flag, **options)
    return parser.parse_args()


def main() -> None:
    """Extract, time each step both ways, print rates and ratios."""
    args = arguments(__doc__)

    from pydantic import TypeAdapter

    from etl.classify import Classifier
    from etl.normalize import NormalizeContext, builds, normalize_bundle, testruns
    from etl.normalize.builds import normalize_build, normalize_timelines
    from etl.normalize.testruns import normalize_results, normalize_run
    from etl.privacy import Scrubber
    from etl.schema import load_tables
    from etl.sources.azure_devops.models import TEST_RESULTS, TIMELINE_RECORDS, TestResult, TimelineRecord
    from etl.warehouse.rows import to_arrow

    bundles = extract(args.builds, args.records_per_job)
    ctx = NormalizeContext("bench", "org", datetime(2026, 11, 23, 6), Scrubber(b"bench-pseudonym-key-0123456789"),
                           Classifier(), lambda *a: None)
    facts = [normalize_build(ctx, b.project, b.build)[1] for b in bundles]
    timelines = [records for b in bundles for _, records in b.timelines]
    runs = [(f, normalize_run(ctx, f, raw)[1], b.test_results.get(raw["id"], []))
            for f, b in zip(facts, bundles, strict=True) for raw in b.test_runs]
    n_records = sum(map(len, timelines))
    n_results = sum(len(r) for _, _, r in runs)
    reject_all = TypeAdapter(list[bool])

    def timelines_whole() -> Any:
        return [normalize_timelines(ctx, f, b.timelines) for f, b in zip(facts, bundles, strict=True)]

    def results_whole() -> Any:
        return [normalize_results(ctx, f, run, results) for f, run, results in runs]

    def by_model(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            builds.TIMELINE_RECORDS, testruns.TEST_RESULTS = reject_all, reject_all
            try:
                return fn()
            finally:
                builds.TIMELINE_RECORDS, testruns.TEST_RESULTS = TIMELINE_RECORDS, TEST_RESULTS
        return run

    assert timelines_whole() == by_model(timelines_whole)(), "the list path must give the model path's rows"
    assert results_whole() == by_model(results_whole)(), "the list path must give the model path's rows"
    r = args.repeat

    # Each list's validated items are kept until the next list, as normalize keeps a build's records
    # while it makes their rows: the garbage collector's share (most of it, at this shape) counts.
    def each(validate: Callable[[Any], Any], lists: list[Any]) -> Callable[[], None]:
        def run() -> None:
            kept: Any = None
            for items in lists:
                kept = [validate(item) for item in items]
            del kept
        return run

    def whole(validate: Callable[[Any], Any], lists: list[Any]) -> Callable[[], None]:
        def run() -> None:
            kept: Any = None
            for items in lists:
                kept = validate(items)
            del kept
        return run

    results_lists = [rs for _, _, rs in runs]
    figures = [
        ("timeline records: model per record", n_records,
         best(each(TimelineRecord.model_validate, timelines), r)),
        ("timeline records: one call per list", n_records,
         best(whole(TIMELINE_RECORDS.validate_python, timelines), r)),
        ("normalize_timelines, every record by the model", n_records, best(by_model(timelines_whole), r)),
        ("normalize_timelines", n_records, best(timelines_whole, r)),
        ("test results: model per result", n_results,
         best(each(TestResult.model_validate, results_lists), r)),
        ("test results: one call per list", n_results, best(whole(TEST_RESULTS.validate_python, results_lists), r)),
        ("normalize_results, every result by the model", n_results, best(by_model(results_whole), r)),
        ("normalize_results", n_results, best(results_whole, r)),
    ]
    tables = load_tables()
    normalized = [normalize_bundle(ctx, b) for b in bundles]
    figures.append(("to_arrow of every normalized table", n_records,
                    best(lambda: [to_arrow(tables[name], rows) for t in normalized for name, rows in t.items()], r)))
    print(f"{len(bundles)} builds, {n_records:,} timeline records, {n_results:,} test results; CPU seconds, best of {r}")
    for index, (label, n, seconds) in enumerate(figures):
        # The figures come in pairs, the model path first, except the last.
        paired = index % 2 == 1 and index < len(figures) - 1
        ratio = f"  {figures[index - 1][2] / seconds:4.1f}x the line above" if paired else ""
        print(f"  {label:<48} {n / seconds:>11,.0f} /s ({seconds:6.3f} s){ratio}")


if __name__ == "__main__":
    main()
