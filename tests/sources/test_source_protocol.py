"""The Source protocol, shown by a test-only source that lives in this file alone.

`ReadingsSource` reads "bench readings" (one BuildMetrics row each) and is registered through
`etl.sources.register` with its own payload normalizer; nothing else in the package knows it.
It drives the run loop's contracts: batches and watermarks, incomplete batches, per-item
quarantine, load retries and dead letters, a source failing alone.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from etl import sources
from etl.cli import app
from etl.config import AzureDevOpsSource, Settings, load_config
from etl.doctor import check_outbox
from etl.normalize.batch import Normalized, normalize_payload
from etl.normalize.context import NormalizeContext
from etl.run import RunOptions, run_etl
from etl.sources.base import Batch, Item, Scope, SourceFailed, Start, Window
from etl.stage.outbox import Outbox
from etl.warehouse.local import LocalWarehouse
from tests.conftest import store_rows as sql

T0 = datetime(2026, 11, 1)


@dataclass(frozen=True)
class Reading:
    """The test source's payload: one timed bench run."""

    key: str
    finished: datetime
    seconds: float
    build_id: int = 1
    explode: bool = False  # the normalizer raises on it


@dataclass(frozen=True)
class ReadingsConfig:
    """The test source's configuration (what a `sources:` entry would hold)."""

    name: str
    readings: tuple[Reading, ...]
    per_batch: int = 2
    audit: dict[str, str] = field(default_factory=dict)  # key -> count-audit finding
    fail: str | None = None
    kind: str = "readings"


class ReadingsSource:
    """One scope; readings finished after the watermark, `per_batch` at a time, oldest first."""

    def __init__(self, cfg: ReadingsConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name

    def scopes(self) -> list[Scope]:
        return [Scope(self.cfg.name, "lab", "bench")]

    def batches(self, scope: Scope, start: Start) -> Iterator[Batch]:
        if self.cfg.fail:
            raise SourceFailed(self.cfg.fail)
        todo = sorted((r for r in self.cfg.readings if start.watermark is None or r.finished > start.watermark),
                      key=lambda r: r.finished)
        since = start.watermark or T0
        for i in range(0, len(todo), self.cfg.per_batch):
            chunk = todo[i:i + self.cfg.per_batch]
            batch = Batch(scope, Window(since, chunk[-1].finished), (), builds=len(chunk))
            batch.items = self._items(chunk, batch)
            yield batch
            since = chunk[-1].finished

    def _items(self, chunk: list[Reading], batch: Batch) -> Iterator[Item]:
        for r in chunk:
            if r.key in self.cfg.audit:
                batch.incomplete.append(f"{r.key}: {self.cfg.audit[r.key]}")
            yield Item(f"reading {r.key}", r)


@contextlib.contextmanager
def open_readings(cfg: ReadingsConfig, env: sources.SourceEnv) -> Iterator[ReadingsSource]:
    yield ReadingsSource(cfg)


@normalize_payload.register
def _reading_rows(payload: Reading, ctx: NormalizeContext, obj: str) -> Normalized:
    if payload.explode:
        raise ValueError("seconds is not a number")
    row = {"Source": ctx.source, "Key": payload.key, "Organization": "lab", "Project": "bench",
           "BuildId": payload.build_id, "EndTime": payload.finished.isoformat(), "DurationSeconds": payload.seconds,
           "IngestedAt": ctx.ingested_iso}
    return Normalized({"key": payload.key}, {"BuildMetrics": [row]})


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    sources.register("readings", open_readings)
    yield
    sources.unregister("readings")


@pytest.fixture
def settings_for(write_config: Callable[..., Path]) -> Callable[..., Settings]:
    """Settings whose sources are the given test-source configurations (the file names a placeholder inbox)."""

    def make(*cfgs: Any, **staging: Any) -> Settings:
        base = load_config(write_config({"sources": [{"kind": "inbox", "path": "inbox"}],
                                         "warehouse": {"kind": "local", "path": "data/wh.duckdb"},
                                         "staging": {"dir": "data/staging", **staging}}))
        return base.model_copy(update={"sources": list(cfgs)})

    return make


def readings(n: int, **marks: Any) -> tuple[Reading, ...]:
    return tuple(Reading(f"r{i}", T0.replace(hour=i), float(i), **marks.get(f"r{i}", {})) for i in range(1, n + 1))


def watermark(settings: Settings) -> list[tuple]:
    return sql(settings, 'SELECT "Source", CAST("Watermark" AS VARCHAR) FROM "EtlWatermarks" ORDER BY 1')


def runs(settings: Settings) -> list[tuple]:
    return sql(settings, 'SELECT CAST("WatermarkTo" AS VARCHAR), "Status", "Attempts", CAST("Errors" AS VARCHAR) '
                         'FROM "EtlRuns" WHERE "Source" = \'bench\' ORDER BY 1, 2')


def keys(settings: Settings) -> list[str]:
    return [r[0] for r in sql(settings, 'SELECT "Key" FROM "BuildMetrics" ORDER BY 1')]


def test_a_registered_source_loads_batch_by_batch_and_commits_its_watermark(settings_for) -> None:
    settings = settings_for(ReadingsConfig("bench", readings(5)))
    summary = run_etl(settings)
    assert not summary.failed
    assert keys(settings) == ["r1", "r2", "r3", "r4", "r5"]
    assert [(o.source, o.project, o.batches, str(o.status)) for o in summary.outcomes] == [
        ("bench", "bench", 3, "loaded")]
    assert watermark(settings) == [("bench", "2026-11-01 05:00:00")]
    assert [r[:3] for r in runs(settings)] == [("2026-11-01 02:00:00", "loaded", 0),
                                               ("2026-11-01 04:00:00", "loaded", 0),
                                               ("2026-11-01 05:00:00", "loaded", 0)]


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no source registered for kind 'teamcity' \\(known: azure_devops, "
                                       "github_actions, github_simulator, inbox, jenkins, jenkins_simulator, "
                                       "readings, simulator\\)"):
        sources.factory_for("teamcity")


def test_an_incomplete_batch_loads_is_marked_and_printed_and_holds_the_watermark(settings_for) -> None:
    cfg = ReadingsConfig("bench", readings(5), audit={"r3": "run 123: 200 of 250 results"})
    settings = settings_for(cfg)
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    batch_id = Outbox(settings.path(settings.staging.dir)).batches("incomplete")[0].batch_id
    assert summary.incomplete_batches == [batch_id]
    assert lines == ["bench: r3: run 123: 200 of 250 results"]
    assert keys(settings) == ["r1", "r2", "r3", "r4", "r5"]  # everything read is loaded
    assert watermark(settings) == [("bench", "2026-11-01 02:00:00")]  # not past the incomplete window
    assert runs(settings)[1] == ("2026-11-01 04:00:00", "incomplete", 0,
                                 '["bench: r3: run 123: 200 of 250 results"]')
    # The next run reads that window again; once complete, the watermark moves to the end.
    run_etl(settings_for(ReadingsConfig("bench", readings(5))))
    assert watermark(settings) == [("bench", "2026-11-01 05:00:00")]
    assert runs(settings)[1][:2] == ("2026-11-01 04:00:00", "loaded")


def test_an_item_that_fails_to_normalize_is_quarantined_and_the_rest_loads(settings_for) -> None:
    settings = settings_for(ReadingsConfig("bench", readings(3, r2={"explode": True})))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert lines == ["bench reading r2: field (payload): normalizing failed: ValueError: seconds is not a number"]
    assert keys(settings) == ["r1", "r3"]
    assert summary.quarantined == 1 and not summary.failed
    assert sql(settings, 'SELECT sum("Quarantined") FROM "EtlRuns"') == [(1,)]
    files = list((settings.path(settings.staging.dir) / "quarantine" / "bench").glob("*.json"))
    assert [json.loads(f.read_text())["object"] for f in files] == ["reading r2"]


def narrowed_store(settings: Settings) -> Settings:
    """The store with BuildMetrics.BuildId narrowed to a 32-bit INTEGER by hand (schema drift the schema
    step never undoes: it adds columns, never retypes), so a staged long over 2**31 cannot load, every time."""
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    wh.apply_schema()
    wh.execute_sql('ALTER TABLE "BuildMetrics" ALTER COLUMN "BuildId" TYPE INTEGER')
    wh.close()
    return settings


def test_a_value_that_does_not_fit_its_column_is_quarantined_as_it_is_staged(settings_for) -> None:
    # BuildId 10**30 does not fit a Kusto long: the typed staging refuses that item alone.
    settings = settings_for(ReadingsConfig("bench", readings(4, r3={"build_id": 10**30})))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert summary.quarantined == 1 and not summary.failed
    assert keys(settings) == ["r1", "r2", "r4"]
    assert lines == ["bench reading r3: field (payload): staging failed: RowError: BuildMetrics {'Source': 'bench', "
                     "'Key': 'r3'}: column BuildId: 1000000000000000000000000000000 does not fit a long (Python int "
                     "too large to convert to C long)"]


def test_a_batch_that_cannot_load_is_retried_then_dead_and_the_others_load(settings_for) -> None:
    # BuildId 2**33 fits a long but not the store's narrowed column: the store refuses that batch, every time.
    settings = narrowed_store(settings_for(ReadingsConfig("bench", readings(5, r3={"build_id": 2**33})),
                                           max_load_attempts=3))
    outbox = Outbox(settings.path(settings.staging.dir))
    for attempt in (1, 2):
        lines: list[str] = []
        summary = run_etl(settings, on_error=lines.append)
        assert summary.failed
        bad = outbox.batches("pending")
        assert [m.attempts for m in bad] == [attempt]
        assert lines[0].startswith(f"batch {bad[0].batch_id} (bench/lab/bench): load attempt {attempt} of 3 failed: ")
    assert keys(settings) == ["r1", "r2", "r5"]  # the batches before and after it loaded
    assert watermark(settings) == [("bench", "2026-11-01 02:00:00")]  # never past the failing window
    lines = []
    run_etl(settings, on_error=lines.append)
    dead = outbox.batches("dead")
    assert [m.batch_id for m in dead] == [bad[0].batch_id]
    assert (outbox.dead_root / bad[0].batch_id / "BuildMetrics.parquet").exists()
    assert lines[0].endswith("; moved to outbox/dead")
    assert runs(settings)[1][:3] == ("2026-11-01 04:00:00", "dead", 3)
    problems = check_outbox(settings, max_age=timedelta(hours=2), now=datetime.now(UTC))
    assert [c.status for c in problems] == ["FAIL"]
    assert problems[0].detail.startswith(f"dead batch {bad[0].batch_id} (bench/lab/bench 2026-11-01T02:00:00 → "
                                         "2026-11-01T04:00:00) after 3 failed loads: ")
    # A dead batch is not loaded again by later runs, which still exit non-zero and name it.
    lines = []
    assert run_etl(settings, on_error=lines.append).failed
    assert lines[0].startswith(f"batch {bad[0].batch_id} (bench/lab/bench) is dead: ")
    assert outbox.batches("dead")[0].attempts == 3


def test_outbox_drop_deletes_a_dead_batch_and_the_next_run_reads_its_window_again(settings_for, tmp_path) -> None:
    poisoned = ReadingsConfig("bench", readings(4, r3={"build_id": 2**33}))
    settings = narrowed_store(settings_for(poisoned, max_load_attempts=1))
    run_etl(settings)
    outbox = Outbox(settings.path(settings.staging.dir))
    dead = outbox.batches("dead")[0].batch_id
    config = str(tmp_path / "config" / "test.yaml")
    # The CLI reads the config file; point it at a staging dir with this dead batch.
    result = CliRunner().invoke(app, ["outbox", "drop", dead, "--reason", "poisoned by a bug since fixed",
                                      "--config", config])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"dropped {dead} (bench/lab/bench 2026-11-01T02:00:00 → 2026-11-01T04:00:00)")
    assert outbox.batches("dead") == []
    assert json.loads((outbox.dropped_root / f"{dead}.json").read_text())["dropped_reason"] == \
        "poisoned by a bug since fixed"
    assert sql(settings, f'SELECT "Status", CAST("Errors" AS VARCHAR) FROM "EtlRuns" WHERE "RunId" = \'{dead}\'') == [
        ("dropped", '["dropped by an operator: poisoned by a bug since fixed"]')]
    # The cause is gone (r3 no longer carries the oversized id): the window is read again and loads.
    run_etl(settings_for(ReadingsConfig("bench", readings(4)), max_load_attempts=1))
    assert keys(settings) == ["r1", "r2", "r3", "r4"]
    assert watermark(settings) == [("bench", "2026-11-01 04:00:00")]


def test_outbox_retry_loads_a_dead_batch_once_the_cause_is_gone(settings_for, tmp_path, monkeypatch) -> None:
    settings = settings_for(ReadingsConfig("bench", readings(2)), max_load_attempts=1)
    real = LocalWarehouse.ingest_staged

    def disk_full(self: LocalWarehouse, table: str, path: Any, batch_id: str, progress: Any = None) -> int:
        if table == "BuildMetrics":
            raise OSError(28, "No space left on device")
        return real(self, table, path, batch_id, progress)

    monkeypatch.setattr(LocalWarehouse, "ingest_staged", disk_full)
    run_etl(settings)
    outbox = Outbox(settings.path(settings.staging.dir))
    dead = outbox.batches("dead")[0]
    assert dead.last_error == "OSError: [Errno 28] No space left on device"
    monkeypatch.setattr(LocalWarehouse, "ingest_staged", real)
    result = CliRunner().invoke(app, ["outbox", "retry", dead.batch_id, "--config", str(tmp_path / "config" / "test.yaml")])
    assert result.output == f"retried {dead.batch_id}: loaded\n"
    assert keys(settings) == ["r1", "r2"]
    assert watermark(settings) == [("bench", "2026-11-01 02:00:00")]
    assert [m.status for m in outbox.batches()] == ["loaded"]


def test_a_garbled_staged_file_fails_that_batch_without_a_traceback_until_it_is_dead(settings_for) -> None:
    held = settings_for(ReadingsConfig("bench", readings(4)), hold_loads=True)
    run_etl(held)
    outbox = Outbox(held.path(held.staging.dir))
    first, second = outbox.batches("held")
    (outbox.path(first.batch_id) / "BuildMetrics.parquet").write_text('{"Key": "r1", "Sour\n')
    for m in (first, second):
        outbox.set_status(m, "pending")
    # The source is gone (nothing re-reads that window): the staged copy is all there is.
    quiet = settings_for(ReadingsConfig("bench", ()))
    for attempt in (1, 2, 3):
        lines: list[str] = []
        run_etl(quiet, on_error=lines.append)
        assert lines[0] == (f"batch {first.batch_id} (bench/lab/bench): load attempt {attempt} of 3 failed: "
                            f"StagedFileError: staged file {first.batch_id}/BuildMetrics.parquet: not a readable "
                            "Parquet file (Parquet magic bytes not found in footer. Either the file is corrupted or "
                            "this is not a parquet file.)"
                            + ("; moved to outbox/dead" if attempt == 3 else "; retried by the next run"))
    assert keys(quiet) == ["r3", "r4"]
    assert [m.batch_id for m in outbox.batches("dead")] == [first.batch_id]


def test_a_failing_source_stops_alone_with_one_line_a_row_and_a_non_zero_exit(settings_for, tmp_path) -> None:
    broken = ReadingsConfig("broken", (), fail="broken: HTTP 401 unauthorized for https://ci.example/api")
    settings = settings_for(broken, ReadingsConfig("bench", readings(2)))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert lines == ["broken: HTTP 401 unauthorized for https://ci.example/api"]
    assert summary.failed
    assert keys(settings) == ["r1", "r2"]
    assert sql(settings, 'SELECT "Source", "Status", CAST("Errors" AS VARCHAR) FROM "EtlRuns" '
                         'WHERE "Source" = \'broken\'') == [
        ("broken", "failed", '["broken: HTTP 401 unauthorized for https://ci.example/api"]')]


def test_an_unresolvable_secret_ends_that_source_and_the_others_load(settings_for, monkeypatch) -> None:
    monkeypatch.delenv("PROTOCOL_TEST_UNSET_PAT", raising=False)
    locked = AzureDevOpsSource(name="locked", organization_url="https://dev.azure.com/contoso", projects=["eng"],
                               token="env://PROTOCOL_TEST_UNSET_PAT")
    settings = settings_for(locked, ReadingsConfig("bench", readings(2)))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert len(lines) == 1 and lines[0].startswith("locked: ")
    assert "PROTOCOL_TEST_UNSET_PAT" in lines[0]
    assert summary.failed
    assert keys(settings) == ["r1", "r2"]
    assert sql(settings, 'SELECT "Status" FROM "EtlRuns" WHERE "Source" = \'locked\'') == [("failed",)]


def test_dry_run_stages_the_test_source_and_loads_nothing(settings_for) -> None:
    settings = settings_for(ReadingsConfig("bench", readings(3)))
    summary = run_etl(settings, RunOptions(dry_run=True))
    assert summary.staged["BuildMetrics"] == 3
    assert keys(settings) == []


def test_a_batch_stages_while_the_batch_before_it_loads_and_the_loads_keep_their_order(settings_for,
                                                                                      monkeypatch) -> None:
    import etl.run
    from etl.load_step import BatchLoader

    settings = settings_for(ReadingsConfig("bench", readings(6)))
    staged: list[str] = []
    loads: list[str] = []
    staging_second = threading.Event()
    real_stage, real_load = etl.run.stage_batch, BatchLoader.load

    def stage(batch: Batch, *args: Any, **kwargs: Any) -> Any:
        staged.append(f"{batch.window.end:%H}")
        if len(staged) == 2:
            staging_second.set()
        return real_stage(batch, *args, **kwargs)

    def load(self: BatchLoader, manifest: Any, advance: bool) -> Any:
        if not loads:  # the first load waits (at most 10 s) for the second batch to begin staging beside it
            loads.append("next batch staging" if staging_second.wait(10) else "no batch staging")
        loads.append(f"{manifest.watermark_to[11:13]} advance={advance}")
        return real_load(self, manifest, advance)

    monkeypatch.setattr(etl.run, "stage_batch", stage)
    monkeypatch.setattr(BatchLoader, "load", load)
    assert not run_etl(settings).failed
    assert staged == ["02", "04", "06"]
    assert loads == ["next batch staging", "02 advance=True", "04 advance=True", "06 advance=True"]
    assert watermark(settings) == [("bench", "2026-11-01 06:00:00")]


def test_with_load_beside_staging_off_each_batch_loads_before_the_next_one_stages(settings_for,
                                                                                  monkeypatch) -> None:
    import etl.run
    from etl.load_step import BatchLoader

    settings = settings_for(ReadingsConfig("bench", readings(6)), load_beside_staging=False)
    events: list[str] = []
    real_stage, real_load = etl.run.stage_batch, BatchLoader.load

    def stage(batch: Batch, *args: Any, **kwargs: Any) -> Any:
        events.append(f"stage {batch.window.end:%H}")
        return real_stage(batch, *args, **kwargs)

    def load(self: BatchLoader, manifest: Any, advance: bool) -> Any:
        status = real_load(self, manifest, advance)
        events.append(f"loaded {manifest.watermark_to[11:13]}")
        return status

    monkeypatch.setattr(etl.run, "stage_batch", stage)
    monkeypatch.setattr(BatchLoader, "load", load)
    assert not run_etl(settings).failed
    assert events == ["stage 02", "loaded 02", "stage 04", "loaded 04", "stage 06", "loaded 06"]
    assert watermark(settings) == [("bench", "2026-11-01 06:00:00")]
