"""JUnit XML reports dropped in the inbox load into TestRuns and TestResults of the build their name gives;
hostile files are quarantined with one line each and the rest of the inbox loads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from etl.config import Settings, load_config
from etl.normalize.junit import run_id_for
from etl.run import run_etl
from etl.sources.inbox import junit_identity
from tests.conftest import store_rows as sql

REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="unit" time="3.5">
  <testsuite name="Contoso.Tests" timestamp="2026-11-20T10:00:00" time="3.5">
    <testcase classname="Contoso.Tests.Math" name="adds" time="0.25"/>
    <testcase classname="Contoso.Tests.Math" name="divides" time="1.5">
      <failure message="expected 2 but was 3">stack</failure>
    </testcase>
    <testcase classname="Contoso.Tests.Net" name="retries" time="1.75">
      <flakyFailure message="timeout"/>
    </testcase>
    <testcase classname="Contoso.Tests.Net" name="ipv6"><skipped/></testcase>
  </testsuite>
</testsuites>
"""
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']><testsuite name="&lol9;"/>')
DEEP = b"<testsuites>" + b"<testsuite>" * 5_000 + b"</testsuite>" * 5_000 + b"</testsuites>"
DOC = {"key": "uploads/1", "build_session": {"end_time": "2026-11-01T00:00:00Z", "duration_seconds": 5,
                                             "os_info": "Linux"}}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def settings(write_config: Callable[..., Path], inbox: Path) -> Settings:
    return load_config(write_config({
        "sources": [{"kind": "inbox", "name": "uploads", "path": "inbox",
                     "junit_organization": "https://dev.azure.com/contoso"}],
        "warehouse": {"kind": "local", "path": "data/wh.duckdb"}, "staging": {"dir": "data/staging"}}))


def quarantined(settings: Settings) -> list[tuple[str, str, str]]:
    root = settings.path(settings.staging.dir) / "quarantine" / "uploads"
    bodies = [json.loads(p.read_text(encoding="utf-8")) for p in root.glob("*.json")]
    return sorted((b["object"], b["field"], b["reason"]) for b in bodies)


def test_an_inbox_junit_file_loads_its_run_and_every_result(settings: Settings, inbox: Path) -> None:
    (inbox / "Engineering--1234--unit.xml").write_bytes(REPORT)
    summary = run_etl(settings)
    assert not summary.failed
    run_id = run_id_for("https://dev.azure.com/contoso/Engineering/1234/unit")
    assert sql(settings, 'SELECT "Organization", "Project", "BuildId", "RunId", "Name", "TotalTests", "PassedTests", '
                         '"FailedTests", "NotExecutedTests", CAST("StartedDate" AS VARCHAR), '
                         'CAST("CompletedDate" AS VARCHAR), CAST("QueueTime" AS VARCHAR) FROM "TestRuns"') == [
        ("https://dev.azure.com/contoso", "Engineering", 1234, run_id, "unit", 4, 2, 1, 1, "2026-11-20 10:00:00",
         "2026-11-20 10:00:03.5", "2026-11-20 10:00:00")]
    assert sql(settings, 'SELECT "BuildId", "RunId", "ResultId", "TestName", "Outcome", "DurationMs", '
                         '"PassedOnRerun", "ResultGroupType", "ErrorMessage" FROM "TestResults" ORDER BY "ResultId"') == [
        (1234, run_id, 1, "Contoso.Tests.Math.adds", "Passed", 250.0, False, None, None),
        (1234, run_id, 2, "Contoso.Tests.Math.divides", "Failed", 1500.0, False, None, "expected 2 but was 3"),
        (1234, run_id, 3, "Contoso.Tests.Net.retries", "Passed", 1750.0, True, "Rerun", None),
        (1234, run_id, 4, "Contoso.Tests.Net.ipv6", "NotExecuted", None, False, None, None),
    ]
    assert sql(settings, 'SELECT "FileName" FROM "EtlInboxFiles"') == [("Engineering--1234--unit.xml",)]


def test_hostile_xml_is_quarantined_with_one_line_each_and_the_rest_of_the_inbox_loads(
        settings: Settings, inbox: Path) -> None:
    (inbox / "Engineering--1--laughs.xml").write_bytes(BILLION_LAUGHS)
    (inbox / "Engineering--2--deep.xml").write_bytes(DEEP)
    (inbox / "no-build-id.xml").write_bytes(REPORT)
    (inbox / "Engineering--3--good.xml").write_bytes(REPORT)
    (inbox / "doc.json").write_text(json.dumps(DOC), encoding="utf-8")
    summary = run_etl(settings)
    assert not summary.failed
    assert summary.quarantined == 3
    assert quarantined(settings) == [
        ("inbox file Engineering--1--laughs.xml", "(DTD)", "refused: DTDForbidden"),
        ("inbox file Engineering--2--deep.xml", "(nesting)", "deeper than 64 elements"),
        ("inbox file no-build-id.xml", "(file name)", "must be <project>--<build id>--<report>.xml (see docs/sources.md)"),
    ]
    assert sql(settings, 'SELECT "BuildId", count(*) FROM "TestResults" GROUP BY 1') == [(3, 4)]
    assert sql(settings, 'SELECT "Key" FROM "BuildMetrics"') == [("uploads/1",)]
    # Only the files whose rows loaded are in the ledger: the rejected ones are reported again until fixed.
    assert sql(settings, 'SELECT "FileName" FROM "EtlInboxFiles" ORDER BY 1') == [
        ("Engineering--3--good.xml",), ("doc.json",)]


def test_a_second_run_reads_no_junit_file_again(settings: Settings, inbox: Path) -> None:
    (inbox / "Engineering--1234--unit.xml").write_bytes(REPORT)
    run_etl(settings)
    second = run_etl(settings)
    assert [str(o.status) for o in second.outcomes] == ["no new data"]
    assert sql(settings, 'SELECT count(*) FROM "TestResults"') == [(4,)]


def test_a_rewritten_report_replaces_its_results(settings: Settings, inbox: Path) -> None:
    path = inbox / "Engineering--1234--unit.xml"
    path.write_bytes(REPORT)
    run_etl(settings)
    path.write_bytes(REPORT.replace(b'<failure message="expected 2 but was 3">stack</failure>', b""))
    run_etl(settings)
    assert sql(settings, 'SELECT "Outcome", count(*) FROM "TestResults" GROUP BY 1 ORDER BY 1') == [
        ("NotExecuted", 1), ("Passed", 3)]


def test_a_junit_file_over_the_size_limit_is_refused_unread(write_config: Callable[..., Path], inbox: Path) -> None:
    settings = load_config(write_config({
        "sources": [{"kind": "inbox", "name": "uploads", "path": "inbox", "max_junit_bytes": 100}],
        "warehouse": {"kind": "local", "path": "data/wh.duckdb"}, "staging": {"dir": "data/staging"}}))
    (inbox / "p--5--big.xml").write_bytes(REPORT)
    run_etl(settings)
    assert quarantined(settings) == [
        ("inbox file p--5--big.xml", "(size)", f"{len(REPORT)} bytes, more than the limit of 100 (refused unread)")]


@pytest.mark.parametrize(("name", "identity"), [
    ("Engineering--1234--unit.xml", ("Engineering", 1234, "unit")),
    ("folder%2Fapp--57--junit-report.xml", ("folder/app", 57, "junit-report")),
    ("a--b--12--x--y.xml", ("a--b", 12, "x--y")),
    ("Engineering--0--unit.xml", None),
    ("Engineering--12.xml", None),
    ("--12--unit.xml", None),
    ("Engineering--x--unit.xml", None),
])
def test_junit_file_names_give_project_build_and_report(name: str, identity: tuple | None) -> None:
    assert junit_identity(name) == identity
