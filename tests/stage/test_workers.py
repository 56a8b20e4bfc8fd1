"""Staging workers (etl/stage/workers.py): builds prepared in other processes stage exactly what the main
process would, know what it knows (names, resolved secrets), and fall back to it whenever they cannot."""

from __future__ import annotations

import copy
import functools
import json
import pickle
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from etl.classify import Classifier
from etl.normalize.context import NormalizeContext
from etl.privacy import SECRET, Scrubber, apply_policy, scrub_payload
from etl.secret_refs import SecretRef
from etl.sources.azure_devops.extract import BuildBundle
from etl.sources.base import Batch, Item, Scope, Window
from etl.stage.batch import stage_batch
from etl.stage.outbox import BatchStatus, Outbox
from etl.stage.prepare import Prepared, prepare_item
from etl.stage.quarantine import Quarantine
from etl.stage.workers import StagingWorkers
from tests.conftest import PROJECT_ROOT, SAMPLES

BUILD_5 = SAMPLES / "azure-devops" / "build-5.0"
RULES = PROJECT_ROOT / "config" / "failure-rules.yaml"
INGESTED = datetime(2026, 12, 1, 6)


def sample(name: str) -> Any:
    data = json.loads((BUILD_5 / name).read_text(encoding="utf-8"))
    return data["responses"]["200"]["body"] if "responses" in data else data


def bundle_items(count: int, note: str = "") -> list[Item]:
    """*count* builds made of the documented build and timeline samples, each with its own id and, when given,
    *note* in every record's name."""
    build, timeline = sample("GET__build_builds__knownBuildId_.json"), sample("GET__build_builds__knownBuildId__timeline.json")
    items = []
    for n in range(count):
        b = {**copy.deepcopy(build), "id": 1000 + n, "buildNumber": f"2026.{n}"}
        records = copy.deepcopy(timeline["records"])
        for record in records:
            record["name"] = f"{record['name']} {note}".strip()
        items.append(Item(f"build {1000 + n}", BuildBundle("proj", b, [(timeline["id"], records)])))
    return items


class Recorder:
    """A quarantine that keeps each call's one-line form."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, source: str, obj: str, field: str, reason: str, payload: Any) -> None:
        self.lines.append(f"{source} {obj}: field {field}: {reason}")


def context(scrubber: Scrubber, quarantine: Recorder) -> NormalizeContext:
    return NormalizeContext("sim", "org", INGESTED, scrubber, Classifier.from_file(RULES), quarantine)


def staged(prepared: Prepared) -> tuple[bytes | None, dict[str, list[dict[str, Any]]], str | None]:
    """What an item stages, comparable: its raw line, its rows per table, its failure."""
    return prepared.raw_line, {t: data.to_pylist() for t, data in prepared.typed.items()}, prepared.failure


def in_main(items: list[Item], scrubber: Scrubber, quarantine: Recorder) -> list[Any]:
    ctx = context(scrubber, quarantine)
    return [staged(prepare_item(ctx, item, lambda t, rows: apply_policy(scrubber, t, rows))) for item in items]


@pytest.fixture
def workers() -> Iterator[StagingWorkers]:
    pool = StagingWorkers(2, Scrubber(b"k" * 32), Classifier.from_file(RULES))
    try:
        yield pool
    finally:
        pool.close()


def in_workers(pool: StagingWorkers, items: list[Item], quarantine: Recorder) -> list[Any]:
    ctx = context(pool.scrubber, quarantine)
    policy = lambda t, rows: apply_policy(pool.scrubber, t, rows)  # noqa: E731
    return [(item.obj, staged(p)) for item, p in pool.prepare(ctx, items, policy)]


def test_workers_stage_the_raw_lines_and_rows_the_main_process_stages_in_the_items_order(
        workers: StagingWorkers) -> None:
    items = bundle_items(7)
    expected = in_main(copy.deepcopy(items), Scrubber(b"k" * 32), Recorder())
    got = in_workers(workers, items, Recorder())
    assert [obj for obj, _ in got] == [f"build {1000 + n}" for n in range(7)]
    assert [s for _, s in got] == expected
    assert len(expected[0][1]["TimelineRecords"]) == 4


def test_a_name_the_main_process_learned_is_masked_by_a_worker(workers: StagingWorkers) -> None:
    workers.scrubber.learn_names({"buildhost-planted"})
    got = in_workers(workers, bundle_items(2, "on buildhost-planted"), Recorder())
    names = [row["Name"] for row in got[1][1][1]["TimelineRecords"]]
    pseudonym = workers.scrubber.pseudonymize("buildhost-planted")
    assert names[0] == f"Build solution **\\*.sln on {pseudonym}"
    assert not any(b"buildhost-planted" in (raw or b"") for _, (raw, _, _) in got)


def test_a_secret_the_main_process_resolved_is_masked_by_a_worker(workers: StagingWorkers,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_WORKER_TEST_TOKEN", "plain-words-no-detector-knows-4711")
    SecretRef("env://ETL_WORKER_TEST_TOKEN").reveal()
    got = in_workers(workers, bundle_items(1, "token plain-words-no-detector-knows-4711"), Recorder())
    raw, tables, _ = got[0][1]
    assert tables["TimelineRecords"][0]["Name"] == f"Build solution **\\*.sln token {SECRET}"
    assert b"plain-words-no-detector-knows-4711" not in (raw or b"")


def test_names_a_worker_learns_come_back_to_the_main_scrubber(workers: StagingWorkers) -> None:
    items = bundle_items(1)
    items[0].payload.timelines[0][1][0]["workerName"] = "agent-learned-in-a-worker"
    in_workers(workers, items, Recorder())
    assert "agent-learned-in-a-worker" in workers.scrubber.known_names()


def test_what_a_worker_quarantines_reaches_the_main_quarantine_with_the_same_lines_in_order(
        workers: StagingWorkers) -> None:
    items = bundle_items(3)
    for item in items[1:]:
        item.payload.timelines[0][1][2]["startTime"] = "yesterday"
    expected, got = Recorder(), Recorder()
    in_main(copy.deepcopy(items), Scrubber(b"k" * 32), expected)
    in_workers(workers, items, got)
    assert got.lines == expected.lines
    assert got.lines == [f"sim build {1000 + n} timeline record {items[n].payload.timelines[0][1][2]['id']}: "
                         "field startTime: invalid datetime 'yesterday'" for n in (1, 2)]


def test_a_build_nested_too_deep_to_pickle_is_prepared_in_the_main_process_with_its_reason(
        workers: StagingWorkers) -> None:
    items = bundle_items(2)
    deep: Any = "bottom"
    for _ in range(100_000):
        deep = [deep]
    items[0].payload.build["tags"] = deep
    with pytest.raises(RecursionError):
        pickle.dumps(items[0])
    expected, got = Recorder(), Recorder()
    in_main([items[0]], Scrubber(b"k" * 32), expected)
    result = in_workers(workers, items, got)
    assert got.lines == expected.lines == [
        "sim build 1000: field tags.0: Input should be a valid string list",
        "sim build 1000: field (raw payload): not staged raw: TypeError: Recursion limit reached"]
    assert len(result) == 2 and result[1][1][1]["TimelineRecords"]


def test_after_the_workers_die_the_rest_of_the_batch_is_prepared_in_the_main_process(
        workers: StagingWorkers) -> None:
    items = bundle_items(8)
    expected = in_main(copy.deepcopy(items), Scrubber(b"k" * 32), Recorder())
    ctx = context(workers.scrubber, Recorder())
    stream = workers.prepare(ctx, items, lambda t, rows: apply_policy(workers.scrubber, t, rows))
    got = [staged(next(stream)[1])]
    pool = workers._pool
    assert pool is not None
    # Killed between two results (one killed while it writes a result has its own test below).
    deadline = time.monotonic() + 60
    while pool._pending_work_items and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    for process in list(pool._processes.values()):  # type: ignore[attr-defined]
        process.kill()
    got += [staged(p) for _, p in stream]
    assert got == expected
    assert workers.broken


def die_while_sending_a_result(project: str, build: dict[str, Any], timelines: Any) -> BuildBundle:
    """How a `DiesWhileSendingItsResult` unpickles: in a worker, it writes the start of a 10 MB result message
    and dies; anywhere else, it is the plain bundle."""
    import gc
    import multiprocessing
    import os
    from multiprocessing.queues import SimpleQueue

    if multiprocessing.parent_process() is None:  # the test's own process (or the main process's fallback)
        return BuildBundle(project, build, timelines)
    gc.unfreeze()  # the worker froze its start-up objects, the result queue among them
    for queue in [o for o in gc.get_objects() if isinstance(o, SimpleQueue)]:
        os.write(queue._writer.fileno(), (10_000_000).to_bytes(4, "big", signed=True) + b"\x80")
    os._exit(9)


class DiesWhileSendingItsResult(BuildBundle):
    """A build whose worker is killed halfway through writing its result."""

    def __reduce__(self) -> tuple[Any, ...]:
        return die_while_sending_a_result, (self.project, self.build, self.timelines)


def test_a_worker_killed_while_it_sends_a_result_does_not_hang_the_run(workers: StagingWorkers) -> None:
    items = bundle_items(3)
    b = items[1].payload
    items[1] = Item(items[1].obj, DiesWhileSendingItsResult(b.project, b.build, b.timelines))
    expected = in_main(copy.deepcopy(items), Scrubber(b"k" * 32), Recorder())
    got = [s for _, s in in_workers(workers, items, Recorder())]
    assert workers._pool is not None
    pool_thread = workers._pool._executor_manager_thread  # type: ignore[attr-defined]
    workers.close()
    assert got == expected
    assert len(expected[1][1]["TimelineRecords"]) == 4
    assert workers.broken
    assert not pool_thread.is_alive()  # nothing holds up the process's exit


def test_items_no_worker_takes_are_prepared_in_the_main_process_in_their_turn(workers: StagingWorkers) -> None:
    items = bundle_items(2)
    unreadable = Item("build 7", {"id": 7}, reason="HTTP 500 after 3 retries")
    quarantine = Recorder()
    got = in_workers(workers, [items[0], unreadable, items[1]], quarantine)
    assert [obj for obj, _ in got] == ["build 1000", "build 7", "build 1001"]
    assert got[1][1] == (None, {}, None)
    assert quarantine.lines == ["sim build 7: field (payload): HTTP 500 after 3 retries"]


def test_a_scrubber_and_a_classifier_copied_for_a_worker_answer_as_the_originals() -> None:
    scrubber = Scrubber(b"k" * 32, redact_ip_addresses=False)
    classifier = Classifier.from_file(RULES)
    copied, classified = pickle.loads(pickle.dumps(scrubber)), pickle.loads(pickle.dumps(classifier))
    text = "mail alice@contoso.com from 10.0.0.7 in /home/alice"
    assert copied.redact(text) == scrubber.redact(text) == "mail <email> from 10.0.0.7 in /home/<user>"
    assert copied.pseudonymize("agent-1") == scrubber.pseudonymize("agent-1")
    message = "error CS0246: The type or namespace name 'Foo' could not be found"
    assert classified.classify(message=message) == classifier.classify(message=message)


def test_no_worker_process_starts_without_workers_configured_or_before_a_build_is_staged() -> None:
    from etl.stage.workers import staging_workers

    with staging_workers(0, Scrubber(b"k" * 32), Classifier.from_file(RULES)) as none:
        assert none is None
    with staging_workers(2, Scrubber(b"k" * 32), Classifier.from_file(RULES)) as pool:
        assert pool is not None and pool._pool is None


def test_a_build_travels_as_its_timeline_bodies_and_arrives_as_the_records_they_decode_to() -> None:
    timeline = sample("GET__build_builds__knownBuildId__timeline.json")
    body = json.dumps(timeline).encode()
    bundle = BuildBundle("proj", {"id": 5}, [(timeline["id"], timeline["records"])], encoded={0: body})
    packed = bundle.packed()
    assert packed.timelines == [(timeline["id"], [])]
    assert packed.unpacked().timelines == bundle.timelines
    assert packed.unpacked().encoded == {}
    with_bom = BuildBundle("proj", {"id": 5}, [(timeline["id"], [])], encoded={0: b"\xef\xbb\xbf" + body})
    assert with_bom.unpacked().timelines == bundle.timelines  # orjson refuses a BOM; the standard library reads it


class Unsendable(BuildBundle):
    """A bundle whose transfer form cannot be made (a payload from an older version of the class, say)."""

    def packed(self) -> BuildBundle:
        raise AttributeError("'BuildBundle' object has no attribute 'encoded'")


def test_a_build_that_cannot_be_sent_to_a_worker_is_prepared_in_the_main_process(workers: StagingWorkers) -> None:
    items = bundle_items(2)
    b = items[0].payload
    items[0] = Item(items[0].obj, Unsendable(b.project, b.build, b.timelines))
    expected = in_main(copy.deepcopy(items), Scrubber(b"k" * 32), Recorder())
    assert [s for _, s in in_workers(workers, items, Recorder())] == expected
    assert len(expected[0][1]["TimelineRecords"]) == 4


def hostile_batch() -> Batch:
    """Four sample builds carrying what hostile payloads carry: deep nesting, NaN, integers past 64 bits, a lone
    surrogate, an e-mail address, a home path, a non-text key and an impossible date."""
    items = bundle_items(4)
    deep: Any = []
    for _ in range(5_000):
        deep = [deep]
    first, second = items[0].payload.timelines[0][1], items[1].payload.timelines[0][1]
    first[0]["details"] = deep
    first[1]["errorCount"] = float("nan")
    first[2]["order"] = 10 ** 400
    first[3]["name"] = "x\ud800y ops@contoso.com"
    second[0]["log"] = {"url": "http://10.1.2.3/?sig=abc", 5: "int key"}
    second[1]["name"] = "mail jane@contoso.com in /home/jane/x"
    items[2].payload.timelines[0][1][2]["startTime"] = "0000-99-99"
    items[3].payload.timelines[0][1][1]["order"] = 2 ** 70
    return Batch(Scope("sim", "org", "proj"), Window(datetime(2026, 11, 1), datetime(2026, 11, 2)), items, builds=4)


def staged_batch(tmp: Path, workers: StagingWorkers | None) -> tuple[dict[str, int], list[str], dict[str, bytes]]:
    """The batch staged under *tmp*: its counts, its quarantine lines and every staged file's bytes (of each
    Parquet file, its rows without IngestedAt: the staging time differs from one staging to the next)."""
    import pyarrow.parquet as pq

    scrubber = workers.scrubber if workers is not None else Scrubber(b"k" * 32)
    lines: list[str] = []
    manifest = stage_batch(hostile_batch(), Outbox(tmp, rows_policy=functools.partial(apply_policy, scrubber)),
                           Quarantine(tmp, scrub=functools.partial(scrub_payload, scrubber), report=lines.append),
                           scrubber, Classifier.from_file(RULES), status=BatchStatus.PENDING, run_id="r",
                           started_at=INGESTED, workers=workers)
    files = {}
    for path in sorted(tmp.rglob("*")):
        if path.suffix == ".parquet":
            data = pq.read_table(path)
            files[path.name] = repr(data.drop_columns(["IngestedAt"]).to_pylist()).encode()
        elif path.is_file() and path.name != "manifest.json":
            files[str(path.relative_to(tmp))] = path.read_bytes()
    return manifest.counts, lines, files


def test_hostile_builds_stage_the_same_files_and_quarantine_lines_with_workers_as_without(
        workers: StagingWorkers, tmp_path: Path) -> None:
    alone, shared = staged_batch(tmp_path / "alone", None), staged_batch(tmp_path / "workers", workers)
    assert shared == alone
    counts, lines, files = alone
    assert counts == {"TimelineBuilds": 4, "TimelineRecords": 12, "TimelineIssues": 4}  # 4 of 16 records quarantined
    assert lines[2:4] == ["sim build 1000: field (raw payload): not staged raw: TypeError: Recursion limit reached",
                          "sim build 1002 timeline record 045f4ce9-cb71-424f-84de-4ab19281dc70: field startTime: "
                          "invalid datetime '0000-99-99'"]
    assert len(lines) == 6 and len([f for f in files if f.startswith("quarantine/")]) == 6
    staged = b"".join(files.values())
    assert all(leak not in staged for leak in (b"jane@contoso.com", b"/home/jane", b"ops@contoso.com", b"10.1.2.3"))
