"""`ci-telemetry doctor`: one line per check, naming exactly what is wrong, non-zero exit on any failure."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from etl.cli import app
from etl.doctor import Check, run_doctor, schema_drift
from etl.schema import load_tables
from etl.warehouse.local import LocalWarehouse

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GOOD_PAT = "doctor-full-scope-pat-value"
BUILD_ONLY_PAT = "doctor-build-only-pat-value"


def _azure_devops(request: Request) -> Response:
    """Loopback Azure DevOps: 200 with the full-scope PAT; a build-only PAT gets 401 on test runs."""
    auth = request.headers.get("Authorization", "")
    token = base64.b64decode(auth.removeprefix("Basic ")).decode().lstrip(":") if auth.startswith("Basic ") else ""
    allowed = token == GOOD_PAT or (token == BUILD_ONLY_PAT and "/_apis/test/" not in request.path)
    body = {"count": 0, "value": []} if allowed else {"message": "unauthorized"}
    return Response(json.dumps(body), status=200 if allowed else 401, content_type="application/json")


@pytest.fixture
def ado_url(httpserver: HTTPServer) -> str:
    httpserver.expect_request(re.compile("^/contoso/")).respond_with_handler(_azure_devops)
    return httpserver.url_for("/contoso")


@pytest.fixture
def config(write_config: Callable[..., Path], ado_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A production-shaped config (Azure DevOps source, PAT from the environment, local store)."""
    monkeypatch.setenv("DOCTOR_TEST_PAT", GOOD_PAT)
    monkeypatch.setenv("DOCTOR_TEST_BUILD_ONLY_PAT", BUILD_ONLY_PAT)
    monkeypatch.delenv("DOCTOR_TEST_UNSET", raising=False)

    def make(token: str = "env://DOCTOR_TEST_PAT") -> Path:
        return write_config({
            "sources": [{"kind": "azure_devops", "name": "contoso", "organization_url": ado_url,
                         "projects": ["eng"], "token": token}],
            "warehouse": {"kind": "local", "path": "warehouse.duckdb"},
        })

    return make


def fill(warehouse: LocalWarehouse, finish: datetime, status: str = "loaded", errors: list[str] | None = None,
         close: bool = True) -> None:
    warehouse.ingest("TimelineBuilds", [{"Organization": "contoso", "Project": "eng", "BuildId": 1,
                                         "FinishTime": finish, "IngestedAt": finish}], "b")
    warehouse.ingest("EtlRuns", [{"RunId": "batch-1", "Source": "contoso", "Organization": "contoso",
                                  "Project": "eng", "StartedAt": finish, "FinishedAt": finish, "Status": status,
                                  "Errors": json.dumps(errors or []), "IngestedAt": finish}], "b")
    if close:  # the doctor opens the file read-only, which DuckDB refuses while a writer holds it
        warehouse.close()


def summary(checks: list[Check]) -> list[tuple[str, str]]:
    return [(c.status, c.name) for c in checks]


def failures(checks: list[Check]) -> list[str]:
    return [c.line() for c in checks if c.status == "FAIL"]


def test_every_check_passes_on_a_fresh_store_with_a_reachable_source(
    warehouse: LocalWarehouse, config: Callable[..., Path], ado_url: str
) -> None:
    fill(warehouse, NOW - timedelta(minutes=30))
    checks = run_doctor(config(), now=NOW)
    assert summary(checks) == [("ok", "config"), ("ok", "secrets"), ("ok", "source"), ("ok", "warehouse"),
                               ("ok", "schema"), ("ok", "etl"), ("ok", "freshness"), ("ok", "outbox")]
    staging = config().parent.parent / "data" / "staging"
    assert checks[7].detail == f"no dead or stuck batch, no new quarantine within 2h ({staging})"
    assert checks[2].detail == f"contoso: {ado_url} reachable; builds and test runs readable in 1 project(s)"
    assert checks[5].detail == "last run per source/project: 1 loaded (newest 2026-06-01T11:30:00Z)"
    assert checks[6].detail == "newest build finished 2026-06-01T11:30:00Z, 30m ago (limit 2h)"


def test_an_unset_secret_is_named_and_its_value_never_printed(
    warehouse: LocalWarehouse, config: Callable[..., Path]
) -> None:
    fill(warehouse, NOW - timedelta(minutes=30))
    checks = run_doctor(config("env://DOCTOR_TEST_UNSET"), now=NOW)
    assert failures(checks) == [
        "FAIL secrets   sources[0].token: secret env://DOCTOR_TEST_UNSET: environment variable DOCTOR_TEST_UNSET is not set",
        "FAIL source    contoso: skipped, its token env://DOCTOR_TEST_UNSET did not resolve",
    ]


def test_a_token_without_test_management_scope_fails_naming_the_source(
    warehouse: LocalWarehouse, config: Callable[..., Path], ado_url: str
) -> None:
    fill(warehouse, NOW - timedelta(minutes=30))
    checks = run_doctor(config("env://DOCTOR_TEST_BUILD_ONLY_PAT"), now=NOW)
    assert failures(checks) == [
        f"FAIL source    contoso: {ado_url}/eng/_apis/test/runs answered 401: the token lacks the Test Management (read) scope"
    ]


def test_a_rejected_token_fails_every_probe_of_the_source(
    warehouse: LocalWarehouse, config: Callable[..., Path], ado_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(warehouse, NOW - timedelta(minutes=30))
    monkeypatch.setenv("DOCTOR_TEST_PAT", "revoked-token-value")
    checks = run_doctor(config(), now=NOW)
    assert failures(checks) == [
        f"FAIL source    contoso: {ado_url}/_apis/connectionData answered 401: the token is missing, expired or not "
        "valid for this organization",
        f"FAIL source    contoso: {ado_url}/eng/_apis/build/builds answered 401: the token lacks the Build (read) scope",
        f"FAIL source    contoso: {ado_url}/eng/_apis/test/runs answered 401: the token lacks the Test Management "
        "(read) scope",
    ]
    assert not any("revoked-token-value" in c.line() for c in checks)


def test_a_missing_table_is_named(warehouse: LocalWarehouse, config: Callable[..., Path]) -> None:
    warehouse.execute_sql('DROP TABLE "TestRuns"')
    fill(warehouse, NOW - timedelta(minutes=30))
    assert failures(run_doctor(config(), now=NOW)) == [
        "FAIL schema    table TestRuns is missing; run `ci-telemetry schema apply`"
    ]


def test_a_missing_column_is_named(warehouse: LocalWarehouse, config: Callable[..., Path]) -> None:
    fill(warehouse, NOW - timedelta(minutes=30), close=False)
    warehouse.execute_sql('ALTER TABLE "TimelineBuilds" DROP COLUMN "Url"')
    warehouse.close()
    assert failures(run_doctor(config(), now=NOW)) == [
        "FAIL schema    column TimelineBuilds.Url is missing; run `ci-telemetry schema apply`"
    ]


def test_a_column_of_another_type_is_named() -> None:
    want = {"EtlRuns": load_tables()["EtlRuns"]}
    have = {"EtlRuns": [(c.name, "string" if c.name == "Builds" else c.kusto_type) for c in want["EtlRuns"].columns]}
    assert schema_drift(have, want) == ["column EtlRuns.Builds is string in the store, long in kql/tables"]


def test_stale_data_fails_the_freshness_check(warehouse: LocalWarehouse, config: Callable[..., Path]) -> None:
    fill(warehouse, NOW - timedelta(hours=5))
    assert failures(run_doctor(config(), now=NOW)) == [
        "FAIL freshness newest build finished 2026-06-01T07:00:00Z, 5h ago (limit 2h)"
    ]


def test_a_failed_last_run_fails_naming_the_source_and_its_error(
    warehouse: LocalWarehouse, config: Callable[..., Path]
) -> None:
    fill(warehouse, NOW - timedelta(minutes=30), status="failed", errors=["contoso: 401 on builds"])
    assert failures(run_doctor(config(), now=NOW)) == [
        "FAIL etl       last run of contoso/eng at 2026-06-01T11:30:00Z: failed: contoso: 401 on builds"
    ]


def test_an_empty_store_warns_no_data_yet_without_failing(warehouse: LocalWarehouse, config: Callable[..., Path]) -> None:
    warehouse.close()
    checks = run_doctor(config(), now=NOW)
    assert [c.line() for c in checks if c.status != "ok"] == [
        "warn etl       no ETL run recorded yet",
        "warn freshness no data yet: no builds in the store",
    ]


def test_an_empty_store_fails_when_data_is_required(warehouse: LocalWarehouse, config: Callable[..., Path]) -> None:
    warehouse.close()
    assert summary(run_doctor(config(), require_data=True, now=NOW))[-3:] == [("FAIL", "etl"), ("FAIL", "freshness"),
                                                                              ("ok", "outbox")]


def test_an_invalid_config_is_the_only_failure_reported(write_config: Callable[..., Path]) -> None:
    path = write_config({"sources": [{"kind": "simulator", "sed": 1}]})
    assert failures(run_doctor(path, now=NOW)) == [
        f"FAIL config    {path}: sources[0].sed: unknown setting (check the spelling; see docs/configuration.md)"
    ]


def test_a_store_that_does_not_exist_fails_with_the_fix(config: Callable[..., Path], tmp_path: Path) -> None:
    checks = run_doctor(config(), now=NOW)
    assert failures(checks) == [
        f"FAIL warehouse local {tmp_path / 'warehouse.duckdb'} does not exist; run `ci-telemetry schema apply`"
    ]


def test_the_simulator_source_is_started_and_probed_like_azure_devops(write_config: Callable[..., Path]) -> None:
    path = write_config({"sources": [{"kind": "simulator", "name": "simulated", "days": 1, "builds_per_day": 2}],
                         "warehouse": {"kind": "local", "path": "warehouse.duckdb"}})
    source = [c for c in run_doctor(path, now=NOW) if c.name == "source"]
    assert [(c.status, re.sub(r":\d+/", ":PORT/", c.detail)) for c in source] == [
        ("ok", "simulated: http://127.0.0.1:PORT/simulated reachable; builds and test runs readable in 2 project(s)")]


def test_doctor_command_prints_one_line_per_check_and_exits_zero_when_all_pass(
    warehouse: LocalWarehouse, config: Callable[..., Path]
) -> None:
    fill(warehouse, datetime.now(UTC) - timedelta(minutes=10))
    result = CliRunner().invoke(app, ["doctor", "--config", str(config())])
    assert result.exit_code == 0, result.output
    assert [line[:5] for line in result.output.splitlines()] == ["ok   "] * 8
    assert GOOD_PAT not in result.output


def test_doctor_command_exits_one_when_a_check_fails(warehouse: LocalWarehouse, config: Callable[..., Path]) -> None:
    fill(warehouse, datetime.now(UTC) - timedelta(hours=3))
    result = CliRunner().invoke(app, ["doctor", "--config", str(config()), "--max-age", "1h"])
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("FAIL")] == [
        line for line in result.output.splitlines() if line.startswith("FAIL freshness newest build finished ")
    ] != []
