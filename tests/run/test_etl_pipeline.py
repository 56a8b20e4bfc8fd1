"""The whole ETL against a loopback Azure DevOps server and a real DuckDB file.

Tests that only read what one plain run loaded share it (the `loaded` fixture, against a module-wide
server nobody changes); a test that runs again does so on a copy of its store. Tests that change the
server, count its requests from scratch or need another config run on their own (`fake`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ado_fixtures import latest_timeline_id, previous_timeline_id, synthetic_organization
from typer.testing import CliRunner

from etl.cli import app
from etl.config import PROJECT_ROOT, Settings, load_config
from etl.run import RunOptions, run_etl
from etl.run_summary import RunSummary
from etl.simulator.handbuilt import HandBuiltServer, serve_organization
from etl.stage.outbox import Outbox
from etl.timeutil import to_utc_naive
from etl.warehouse.base import WarehouseError
from etl.warehouse.local import LocalWarehouse
from tests.conftest import config_writer, copied_settings, table_counts

TABLES = ("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults", "BuildMetrics",
          "BuildStages", "MetricSamples", "PipelineSteps")
RULES = str(PROJECT_ROOT / "config" / "failure-rules.yaml")


@pytest.fixture
def fake() -> Iterator[tuple[HandBuiltServer, dict[str, int]]]:
    org, counts = synthetic_organization(builds=5)
    with serve_organization(org) as srv:
        yield srv, counts


def ado_source(url: str, name: str = "ado", **extra: Any) -> dict[str, Any]:
    return {"kind": "azure_devops", "name": name, "organization_url": url, "projects": ["alpha"], "auth": "none",
            "page_size": 2, "max_retries": 3, "backoff_seconds": 0, "max_backoff_seconds": 0,
            "initial_lookback_days": 3650, **extra}


def configurer(write_config: Callable[..., Path]) -> Callable[..., Settings]:
    """A function making the settings (config/test.yaml) of *sources* and further config sections."""
    def make(*sources: dict[str, Any], **sections: Any) -> Settings:
        data = {"sources": list(sources), "warehouse": {"kind": "local", "path": "data/wh.duckdb"},
                "staging": {"dir": "data/staging", **sections.pop("staging", {})},
                "classification": {"rules": RULES}, **sections}
        return load_config(write_config(data))

    return make


@pytest.fixture
def configure(write_config: Callable[..., Path]) -> Callable[..., Settings]:
    return configurer(write_config)


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[tuple[HandBuiltServer, dict[str, int]]]:
    """The organization of `fake`, served once for the module: for tests that neither change it nor count
    its requests from before their own run."""
    org, counts = synthetic_organization(builds=5)
    with serve_organization(org) as srv:
        yield srv, counts


@dataclass(frozen=True)
class Loaded:
    """One plain run from `shared_fake`: its settings and summary, and the organization's expected rows."""

    settings: Settings
    summary: RunSummary
    expected: dict[str, int]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, shared_fake) -> Loaded:
    srv, expected = shared_fake
    settings = configurer(config_writer(tmp_path_factory.mktemp("loaded")))(ado_source(srv.url))
    return Loaded(settings, run_etl(settings), expected)


def counts(settings: Settings) -> dict[str, int]:
    return table_counts(settings, TABLES)


def query(settings: Settings, kql: str) -> Any:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return wh.query(kql)
    finally:
        wh.close()


def test_a_run_loads_every_table_with_the_expected_rows(loaded) -> None:
    assert counts(loaded.settings) == loaded.expected
    assert loaded.summary.loaded == loaded.expected
    assert not loaded.summary.failed


def test_a_second_run_loads_nothing_new(loaded, tmp_path: Path) -> None:
    settings = copied_settings(loaded.settings, "test.yaml", tmp_path / "twice")
    run_etl(settings)
    assert counts(settings) == loaded.expected


def test_watermark_is_the_latest_finish_time_loaded(loaded) -> None:
    frame = query(loaded.settings, "LatestEtlWatermarks | project Source, Organization, Project, Watermark")
    row = frame.iloc[0]
    assert (row.Source, row.Organization, row.Project, str(row.Watermark)) == (
        "ado", "handbuilt", "alpha", "2026-11-01 10:30:00.123456")


def test_next_run_asks_from_the_watermark(loaded, shared_fake, tmp_path: Path) -> None:
    srv, _ = shared_fake
    settings = copied_settings(loaded.settings, "test.yaml", tmp_path / "next")
    srv.requests.clear()
    run_etl(settings)
    first = next(r for r in srv.requests if "_apis/build/builds?" in r)
    assert "minTime=2026-11-01T10%3A30%3A00.123456Z" in first


def test_retried_record_in_latest_and_previous_timeline_is_one_row(loaded) -> None:
    frame = query(loaded.settings, "TimelineRecords | where BuildId == 101 and Type in ('Stage', 'Job') "
                            "| project RecordId, Attempt, TimelineId, Path | order by Path asc, Attempt asc")
    assert [tuple(r) for r in frame.itertuples(index=False)] == [
        ("s-101", 1, latest_timeline_id(101), "0001"),
        ("j0a1-101", 1, previous_timeline_id(101), "0001.0001.0001"),
        ("j0-101", 2, latest_timeline_id(101), "0001.0001.0001"),
        ("j1-101", 1, latest_timeline_id(101), "0001.0001.0002"),
    ]


def test_issue_log_line_redaction_and_validation_results(loaded) -> None:
    frame = query(loaded.settings, "TimelineIssues | where BuildId == 101 | project RecordId, Category, LogLine, Message "
                            "| order by RecordId asc")
    rows = [tuple(r) for r in frame.itertuples(index=False)]
    assert rows[0][:2] == ("", "ValidationResult") and pd.isna(rows[0][2])
    assert rows[1][:3] == ("t-a1-101", "General", 42)
    assert "alice" not in rows[1][3]


def test_pull_request_build_has_target_branch_and_number(loaded) -> None:
    frame = query(loaded.settings, "TimelineBuilds | where BuildId == 102 | project BuildKind, TargetBranch, "
                            "PullRequestNumber, Definition, Attempts")
    assert tuple(frame.iloc[0]) == ("PullRequest", "refs/heads/main", 41, "ci\\main", 1)


def test_every_row_of_a_batch_has_the_batch_staging_time(loaded) -> None:
    settings = loaded.settings
    outbox = Outbox(settings.path(settings.staging.dir))
    first = outbox.batches()[0]
    stamps = {row["IngestedAt"] for t in TABLES for chunk in outbox.rows(first.batch_id, t) for row in chunk}
    assert stamps == {to_utc_naive(first.staged_at)}


def test_rerunning_the_same_window_reuses_batch_ids_and_stages_identical_bytes(fake, configure) -> None:
    srv, expected = fake
    settings = configure(ado_source(srv.url))
    since = RunOptions(since=load_since("2000-01-01"))
    run_etl(settings, since)
    outbox = Outbox(settings.path(settings.staging.dir))

    def staged() -> dict[str, bytes]:
        return {m.batch_id: b"".join(p.read_bytes() for p in sorted(outbox.path(m.batch_id).glob("*.parquet")))
                for m in outbox.batches()}

    before = staged()
    assert before and all(before.values())  # something was staged, so the comparison means something
    run_etl(settings, since)
    assert staged() == before
    assert counts(settings) == expected


def load_since(text: str) -> Any:
    from etl.timeutil import to_utc_naive

    return to_utc_naive(text)


def test_a_retried_build_is_reread_and_replaced_not_duplicated(fake, configure) -> None:
    srv, expected = fake
    settings = configure(ado_source(srv.url))
    run_etl(settings)
    build = srv.org.builds["alpha"][1]
    build["finishTime"] = "2026-11-02T00:00:00Z"
    build["result"] = "failed"
    run_etl(settings)
    assert counts(settings) == expected
    frame = query(settings, "TimelineBuilds | where BuildId == 102 | project Result")
    assert list(frame.Result) == ["failed"]


def test_malformed_record_is_quarantined_and_the_rest_loads(fake, configure, capsys) -> None:
    srv, expected = fake
    srv.org.timelines[102]["records"][3]["startTime"] = "not-a-date"
    bad_id = srv.org.timelines[102]["records"][3]["id"]
    settings = configure(ado_source(srv.url))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert lines == [f"ado build 102 timeline record {bad_id}: field startTime: invalid datetime 'not-a-date'"]
    assert summary.quarantined == 1
    assert counts(settings)["TimelineRecords"] == expected["TimelineRecords"] - 1
    files = list((settings.path(settings.staging.dir) / "quarantine" / "ado").glob("*.json"))
    assert len(files) == 1
    body = json.loads(files[0].read_text())
    assert (body["reason"], body["field"], body["object"]) == (
        "invalid datetime 'not-a-date'", "startTime", f"build 102 timeline record {bad_id}")
    quarantined = query(settings, "EtlRuns | summarize sum(Quarantined)")
    assert int(quarantined.iloc[0, 0]) == 1


def test_listed_build_with_unreadable_finish_time_is_quarantined_and_the_others_load(fake, configure) -> None:
    srv, _ = fake
    srv.org.builds["alpha"][4]["finishTime"] = "yesterday"
    settings = configure(ado_source(srv.url))
    lines: list[str] = []
    run_etl(settings, on_error=lines.append)
    assert lines == ["ado build 105: field finishTime: invalid datetime 'yesterday'"]
    assert counts(settings)["TimelineBuilds"] == 4


def test_401_on_one_source_stops_it_and_the_other_source_loads(fake, configure) -> None:
    srv, expected = fake
    org2, _ = synthetic_organization(builds=2, first_id=500, organization="locked")
    with serve_organization(org2, token="right") as locked:
        os.environ["ETL_TEST_PAT"] = "wrong"
        settings = configure(ado_source(locked.url, name="locked", auth="pat", token="env://ETL_TEST_PAT"),
                             ado_source(srv.url))
        lines: list[str] = []
        summary = run_etl(settings, on_error=lines.append)
    assert lines == [f"locked: organization locked: HTTP 401 unauthorized for {locked.url}/alpha/_apis/build/builds"
                     " — check the PAT (expired or revoked? scopes Build: Read and Test Management: Read)"
                     " or the Entra identity's access to the organization"]
    assert summary.failed
    assert counts(settings) == expected


def test_failing_ingest_keeps_watermark_and_rerun_completes_without_duplicates(fake, configure, monkeypatch) -> None:
    srv, expected = fake
    settings = configure(ado_source(srv.url))
    real = LocalWarehouse.ingest_staged

    def broken(self: LocalWarehouse, table: str, path: Any, batch_id: str, progress: Any = None) -> int:
        if table == "TestResults":
            raise WarehouseError("local ingestion into TestResults failed: disk full")
        return real(self, table, path, batch_id, progress)

    monkeypatch.setattr(LocalWarehouse, "ingest_staged", broken)
    summary = run_etl(settings)
    assert summary.failed
    assert query(settings, "LatestEtlWatermarks | count").iloc[0, 0] == 0
    # Every batch was tried (one failing batch does not stop the others) and waits for the next run.
    batches = Outbox(settings.path(settings.staging.dir)).batches()
    assert [(m.status, m.attempts) for m in batches] == [("pending", 1)] * 3
    assert batches[0].last_error == ("WarehouseError: local ingestion into TestResults failed: disk full")
    monkeypatch.setattr(LocalWarehouse, "ingest_staged", real)
    second = run_etl(settings)
    assert second.resumed_batches == [m.batch_id for m in batches]
    assert not second.failed
    assert counts(settings) == expected


def test_hold_loads_stages_without_loading_until_release(fake, configure) -> None:
    srv, expected = fake
    settings = configure(ado_source(srv.url), staging={"hold_loads": True})
    run_etl(settings)
    outbox = Outbox(settings.path(settings.staging.dir))
    assert {m.status for m in outbox.batches()} == {"held"}
    assert counts(settings) == dict.fromkeys(TABLES, 0)
    result = CliRunner().invoke(app, ["outbox", "release", "--config", str(settings.base_dir / "config" / "test.yaml")])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 3 and result.output.startswith("released ")
    assert counts(settings) == expected
    assert {m.status for m in outbox.batches()} == {"loaded"}


def test_dry_run_stages_and_loads_nothing(fake, configure) -> None:
    srv, expected = fake
    settings = configure(ado_source(srv.url))
    summary = run_etl(settings, RunOptions(dry_run=True))
    assert summary.staged == expected
    assert counts(settings) == dict.fromkeys(TABLES, 0)
    assert {m.status for m in Outbox(settings.path(settings.staging.dir)).batches()} == {"dry-run"}


def test_opted_out_project_is_never_requested(fake, configure) -> None:
    srv, _ = fake
    settings = configure(ado_source(srv.url), privacy={"opt_out": {"projects": ["alpha"]}})
    run_etl(settings)
    assert srv.requests == []


def test_planted_pii_never_reaches_store_or_outbox(loaded) -> None:
    settings = loaded.settings
    staged = b"".join(p.read_bytes() for p in settings.path(settings.staging.dir).rglob("*") if p.is_file())
    store = settings.path(settings.warehouse.path).read_bytes()
    for value in (b"alice@example.com", b"bob@example.com", b"/home/alice", b"agent-host-01", b"Alice Example"):
        assert value not in staged
        assert value not in store


def test_inbox_documents_load_and_a_bad_one_is_quarantined(configure, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    doc = {"key": "gh/run/1", "source": "github", "build_session": {"end_time": "2026-11-01T00:00:00Z",
                                                                   "duration_seconds": 10, "os_info": "Windows-11"},
           "build_metrics": {"build_stages": [{"name": "compile", "duration": 4}]}}
    (inbox / "one.json").write_text(json.dumps(doc))
    (inbox / "bad.json").write_text("{not json")
    settings = configure({"kind": "inbox", "name": "inbox", "path": "inbox"})
    lines: list[str] = []
    run_etl(settings, on_error=lines.append)
    assert len(lines) == 1 and lines[0].startswith("inbox inbox file bad.json: field (document): not valid JSON")
    frame = query(settings, "MetricSamples | project Key, Metric, Value, Platform | order by Metric asc")
    assert [tuple(r) for r in frame.itertuples(index=False)] == [
        ("gh/run/1", "duration_seconds", 10.0, "windows"),
        ("gh/run/1", "stage_duration_seconds:compile", 4.0, "windows"),
    ]


def test_cli_etl_writes_markdown_summary_and_outbox_list_show(fake, configure, tmp_path: Path) -> None:
    srv, expected = fake
    settings = configure(ado_source(srv.url))
    config = tmp_path / "config" / "test.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["etl", "--config", str(config), "--summary-file", str(tmp_path / "s.md")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "s.md").read_text()
    n = expected["TimelineRecords"]
    assert f"| TimelineRecords | {n} | {n} |" in markdown
    listing = runner.invoke(app, ["outbox", "list", "--config", str(config)])
    lines = listing.output.strip().splitlines()
    assert len(lines) == 3 and all(" loaded " in line for line in lines)
    batch = lines[0].split()[0]
    shown = runner.invoke(app, ["outbox", "show", batch, "--config", str(config)])
    assert f"batch:      {batch}" in shown.output
    assert "TimelineBuilds" in shown.output and "2 rows" in shown.output
    missing = runner.invoke(app, ["outbox", "show", "nope", "--config", str(config)])
    assert missing.exit_code == 2
    assert settings.staging.dir == Path("data/staging")


def test_cli_etl_exits_non_zero_when_a_source_fails(configure, tmp_path: Path) -> None:
    configure(ado_source("http://127.0.0.1:9/org", max_retries=0))
    result = CliRunner().invoke(app, ["etl", "--config", str(tmp_path / "config" / "test.yaml")])
    assert result.exit_code == 1
    assert "error: ado: http://127.0.0.1:9/org/alpha/_apis/build/builds: gave up after 1 attempts" in result.output


def test_cli_since_overrides_the_watermark(fake, configure, tmp_path: Path) -> None:
    srv, _ = fake
    configure(ado_source(srv.url))
    config = str(tmp_path / "config" / "test.yaml")
    runner = CliRunner()
    assert runner.invoke(app, ["etl", "--config", config]).exit_code == 0
    srv.requests.clear()
    result = runner.invoke(app, ["etl", "--config", config, "--since", "2026-11-01"])
    assert result.exit_code == 0, result.output
    first = next(r for r in srv.requests if "_apis/build/builds?" in r)
    assert "minTime=2026-11-01T00%3A00%3A00.000000Z" in first


def test_cli_since_rejects_a_non_date(configure, tmp_path: Path) -> None:
    configure(ado_source("http://127.0.0.1:9/org"))
    result = CliRunner().invoke(app, ["etl", "--config", str(tmp_path / "config" / "test.yaml"), "--since", "soon"])
    assert result.exit_code == 2
    assert "error: --since 'soon': expected a date or datetime" in result.output


def test_a_build_whose_details_cannot_be_read_is_quarantined_and_the_others_load(fake, configure, monkeypatch) -> None:
    import zipfile

    from etl.sources.azure_devops.extract import AzureDevOpsExtractor

    srv, expected = fake
    real = AzureDevOpsExtractor._metrics

    def corrupt(self: AzureDevOpsExtractor, project: str, bundle: Any, artifact: str) -> None:
        if bundle.build_id == 103:
            raise zipfile.BadZipFile("Bad CRC-32 for file 'metrics.json'")
        real(self, project, bundle, artifact)

    monkeypatch.setattr(AzureDevOpsExtractor, "_metrics", corrupt)
    settings = configure(ado_source(srv.url))
    lines: list[str] = []
    summary = run_etl(settings, on_error=lines.append)
    assert lines == ["ado build 103: field (payload): BadZipFile: Bad CRC-32 for file 'metrics.json'"]
    assert not summary.failed and summary.quarantined == 1
    assert counts(settings)["TimelineBuilds"] == expected["TimelineBuilds"] - 1
    # A quarantined build does not hold the watermark back: it is kept, with its reason, for review.
    frame = query(settings, "LatestEtlWatermarks() | project Watermark")
    assert str(frame.iloc[0].Watermark) == "2026-11-01 10:30:00.123456"


def test_cli_workers_overrides_staging_workers_and_loads_the_same_rows(fake, configure, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import etl.run

    srv, expected = fake
    settings = configure(ado_source(srv.url))
    counts: list[int] = []
    real = etl.run.staging_workers

    def counted(count: int, *args: Any) -> Any:
        counts.append(count)
        return real(count, *args)

    monkeypatch.setattr(etl.run, "staging_workers", counted)
    result = CliRunner().invoke(app, ["etl", "--config", str(tmp_path / "config" / "test.yaml"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert (counts, settings.staging.workers) == ([2], 0)
    assert table_counts(settings, ("TimelineRecords",)) == {"TimelineRecords": expected["TimelineRecords"]}
