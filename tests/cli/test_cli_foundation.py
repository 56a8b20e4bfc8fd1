"""The foundation commands as a user runs them: `schema apply`, `query`, `serve`, and their errors.

Most cases run the typer app in-process (CliRunner); the console script itself is run as a
subprocess for the apply-then-query path and for `serve`, which must print its URL and answer a
real Kusto client until interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The loopback Key Vault of test_secrets.py (tests/ is not a package; pytest puts it on sys.path).
from test_secrets import SECRET_VALUE, FakeVault, StubCredential, fake_key_vault
from typer.testing import CliRunner

from etl.cli import app
from etl.config import KustoWarehouse as KustoSettings
from etl.config import load_config
from etl.schema import load_tables
from etl.warehouse.kusto import KustoWarehouse
from etl.warehouse.local import LocalWarehouse

CLI = Path(sys.executable).parent / "ci-telemetry"
LOCAL = {"sources": [{"kind": "simulator"}], "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"}}
runner = CliRunner()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kusto_config(secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "sources": [{"kind": "simulator"}],
        "warehouse": {"kind": "kusto", "cluster_url": f"http://127.0.0.1:{_closed_port()}", "database": "CiTelemetry",
                      "auth": "app_key", "client_id": "app-id", "tenant_id": "tenant-id", "client_secret": secret},
        **extra,
    }


def _run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_schema_apply_then_query_count_prints_zero(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = write_config(LOCAL)
    apply = subprocess.run([str(CLI), "schema", "apply", "-c", str(config)], capture_output=True, text=True, timeout=120)
    assert apply.returncode == 0, apply.stderr
    assert apply.stdout.splitlines()[-1] == f"{len(load_tables())} change(s) applied"
    count = subprocess.run([str(CLI), "query", "TimelineBuilds | count", "-c", str(config)],
                           capture_output=True, text=True, timeout=120)
    assert (count.returncode, count.stdout) == (0, "0\n")
    assert (tmp_path / "data" / "warehouse.duckdb").exists()


def test_a_second_schema_apply_has_nothing_to_change(write_config: Callable[..., Path]) -> None:
    config = write_config(LOCAL)
    assert _run("schema", "apply", "-c", str(config)).exit_code == 0
    again = _run("schema", "apply", "-c", str(config))
    assert (again.exit_code, again.stdout) == (0, "schema is up to date: nothing to change\n")


@pytest.fixture
def loaded_config(write_config: Callable[..., Path]) -> Path:
    config = write_config(LOCAL)
    settings = load_config(config)
    store = LocalWarehouse(settings.path(settings.warehouse.path))
    store.apply_schema()
    store.ingest("TimelineBuilds", [
        {"Organization": "o", "Project": "Engineering", "BuildId": 101, "Result": "failed", "IngestedAt": "2026-01-03"},
        {"Organization": "o", "Project": "Platform", "BuildId": 7, "Result": "succeeded", "IngestedAt": "2026-01-03"},
    ], "b1")
    store.close()
    return config


QUERY = "declare query_parameters(p:string); TimelineBuilds | where Project == p | project BuildId, Result"


def test_query_prints_csv_with_a_parameter(loaded_config: Path) -> None:
    result = _run("query", QUERY, "--param", "p=Engineering", "--format", "csv", "-c", str(loaded_config))
    assert (result.exit_code, result.stdout) == (0, "BuildId,Result\n101,failed\n")


def test_query_prints_json_records(loaded_config: Path) -> None:
    result = _run("query", QUERY, "-p", "p=Platform", "-f", "json", "-c", str(loaded_config))
    assert (result.exit_code, result.stdout) == (0, '[{"BuildId":7,"Result":"succeeded"}]\n')


def test_query_params_are_typed_by_the_declaration(loaded_config: Path) -> None:
    result = _run("query", "declare query_parameters(id:long, s:string); TimelineBuilds | where BuildId == id"
                  " | project BuildId, Result, Echo = s", "-p", "id=101", "-p", "s=101", "-f", "json", "-c", str(loaded_config))
    assert (result.exit_code, result.stdout) == (0, '[{"BuildId":101,"Result":"failed","Echo":"101"}]\n')


def test_a_hostile_parameter_matches_nothing(loaded_config: Path) -> None:
    result = _run("query", QUERY.replace("project BuildId, Result", "count"), "-p", "p=x' or 1==1 or Project=='",
                  "-c", str(loaded_config))
    assert (result.exit_code, result.stdout) == (0, "0\n")


def test_an_unknown_format_is_one_line(loaded_config: Path) -> None:
    result = _run("query", "TimelineBuilds | count", "--format", "xml", "-c", str(loaded_config))
    assert (result.exit_code, result.stderr) == (2, "error: --format 'xml': expected table, csv or json\n")


def test_a_config_typo_is_one_line_and_exit_2(write_config: Callable[..., Path]) -> None:
    config = write_config({**LOCAL, "warehouse": {"kind": "local", "pth": "x.duckdb"}})
    result = _run("schema", "apply", "-c", str(config))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}: warehouse.pth: unknown setting (check the spelling; see docs/configuration.md)\n"
    )


def test_a_missing_env_secret_is_one_line_naming_the_reference(write_config: Callable[..., Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_TELEMETRY_MISSING_SECRET", raising=False)
    config = write_config(_kusto_config("env://CI_TELEMETRY_MISSING_SECRET"))
    result = _run("schema", "apply", "-c", str(config))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: secret env://CI_TELEMETRY_MISSING_SECRET: environment variable CI_TELEMETRY_MISSING_SECRET is not set\n"
    )


def test_an_unreachable_key_vault_is_one_line(write_config: Callable[..., Path]) -> None:
    port = _closed_port()
    config = write_config(_kusto_config("keyvault://contoso-kv/kusto-app-secret",
                                        keyvault={"url_template": f"https://127.0.0.1:{port}"}))
    result = _run("schema", "apply", "-c", str(config))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: secret keyvault://contoso-kv/kusto-app-secret: Key Vault contoso-kv at https://127.0.0.1:{port} "
        "is unreachable (ServiceRequestError)\n"
    )


@pytest.fixture
def key_vault(tmp_path: Path) -> Iterator[tuple[FakeVault, Path]]:
    with fake_key_vault(tmp_path) as served:
        yield served


def test_resolved_secrets_never_appear_in_any_output(write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
                                                     key_vault: tuple[FakeVault, Path]) -> None:
    """The secret resolves (from the environment, and from Key Vault), then the cluster is
    unreachable: the error is printed, the value is not."""
    vault, cert = key_vault
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setattr("etl.secret_refs._credential", StubCredential)
    monkeypatch.setenv("CI_TELEMETRY_TEST_SECRET", SECRET_VALUE)
    outputs = []
    for name, secret in (("env.yaml", "env://CI_TELEMETRY_TEST_SECRET"), ("kv.yaml", "keyvault://contoso-kv/ado-pat")):
        config = write_config(_kusto_config(secret, keyvault={"url_template": vault.url}), name=name)
        for command in (["schema", "apply"], ["query", "TimelineBuilds | count"], ["schema", "show"]):
            result = _run(*command, "-c", str(config))
            assert result.exit_code == 2, result.output
            assert re.fullmatch(r"error: Kusto (command `[^`]+` |query )failed: Failed to process network request for the "
                                r"endpoint: http://127\.0\.0\.1:\d+/v1/rest/auth/metadata( — in: .*)?\n", result.stderr)
            outputs.append(result.output)
    assert vault.requests == ["/secrets/ado-pat/"] * 3  # a fresh process per command in real use
    assert not [o for o in outputs if SECRET_VALUE in o]


def test_serve_prints_its_url_and_answers_a_kusto_client(loaded_config: Path) -> None:
    process = subprocess.Popen([str(CLI), "serve", "--port", "0", "-c", str(loaded_config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        url_line = process.stdout.readline().strip()
        assert header.startswith("serving ") and header.endswith("as Kusto database 'warehouse'\n")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url_line)
        client = KustoWarehouse(KustoSettings(cluster_url=url_line, database="warehouse", auth="none"))
        frame = client.query("declare query_parameters(p:string); LatestTimelineBuilds | where Project == p"
                             " | project BuildId", {"p": "Platform"})
        client.close()
        assert frame["BuildId"].tolist() == [7]
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert out.splitlines()[-1] == "stopped"


def test_serve_refuses_a_kusto_warehouse_in_one_line(write_config: Callable[..., Path]) -> None:
    config = write_config(_kusto_config("env://CI_TELEMETRY_TEST_SECRET"))
    result = _run("serve", "-c", str(config))
    assert (result.exit_code, result.stderr) == (
        2, "error: serve works on a local warehouse (warehouse.kind: local); query the cluster directly instead\n")


@pytest.mark.parametrize("command", [["serve"], ["schema", "apply"], ["query"]])
def test_foundation_commands_have_help_with_an_example(command: list[str]) -> None:
    result = _run(*command, "--help")
    assert result.exit_code == 0
    assert "Example: ci-telemetry " + command[0] in result.stdout
