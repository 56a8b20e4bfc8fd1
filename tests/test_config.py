"""Configuration files: the shipped ones load; every mistake is one line naming file and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from etl.config import DEFAULT_CONFIG, PROJECT_ROOT, ConfigError, load_config
from etl.secret_refs import SecretRef

LITERAL = "hunter2-literal-pat"


def test_default_config_is_the_simulator_into_a_local_store() -> None:
    settings = load_config(DEFAULT_CONFIG)
    assert [s.kind for s in settings.sources] == ["simulator", "jenkins_simulator", "github_simulator"]
    assert settings.warehouse.kind == "local"
    assert settings.path(settings.warehouse.path) == PROJECT_ROOT / "data" / "warehouse.duckdb"


def test_example_production_config_is_azure_devops_into_kusto_with_secret_references() -> None:
    settings = load_config(PROJECT_ROOT / "config" / "example-production.yaml")
    assert settings.warehouse.kind == "kusto"
    assert settings.warehouse.resolved_ingest_url == "https://ingest-contosoci.westeurope.kusto.windows.net"
    assert settings.sources[0].token == SecretRef("keyvault://contoso-ci-kv/ado-telemetry-pat")
    assert settings.privacy.pseudonymization_key == SecretRef("keyvault://contoso-ci-kv/telemetry-pseudonym-key")
    assert (settings.retention.builds_days, settings.retention.details_days) == (730, 90)


def test_a_misspelled_key_is_one_line_naming_file_and_field(write_config: Callable[..., Path]) -> None:
    path = write_config("sources:\n  - kind: simulator\nwarehouse:\n  kind: local\n  pth: data/x.duckdb\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: warehouse.pth: unknown setting (check the spelling; see docs/configuration.md)"
    )


def test_each_problem_gets_its_own_line(write_config: Callable[..., Path]) -> None:
    path = write_config("sources:\n  - kind: simulator\n    sed: 7\nretension: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [line.split(": ")[1] for line in str(info.value).splitlines()] == ["sources[0].sed", "retension"]


def test_a_wrong_type_names_file_field_and_what_was_expected(write_config: Callable[..., Path]) -> None:
    path = write_config("sources:\n  - kind: simulator\n    days: many\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: sources[0].days: Input should be a valid integer, unable to parse string as an integer"


def test_an_unknown_warehouse_kind_is_rejected(write_config: Callable[..., Path]) -> None:
    path = write_config("sources:\n  - kind: simulator\nwarehouse:\n  kind: postgres\n")
    with pytest.raises(ConfigError, match=r"warehouse: Input tag 'postgres' found using 'kind' does not match"):
        load_config(path)


def test_a_literal_secret_is_rejected_without_echoing_it(write_config: Callable[..., Path]) -> None:
    path = write_config({
        "sources": [{"kind": "azure_devops", "name": "c", "organization_url": "https://dev.azure.com/c",
                     "projects": ["p"], "token": LITERAL}],
        "warehouse": {"kind": "kusto", "cluster_url": "https://c.kusto.windows.net", "database": "D",
                      "auth": "app_key", "client_id": "id", "tenant_id": "t", "client_secret": LITERAL},
    })
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["sources[0].token", "warehouse.client_secret"]
    assert all(line.endswith("or `env://NAME`, not a literal value") for line in lines)
    assert LITERAL not in str(info.value)


def test_secret_references_are_kept_unresolved_when_loading(write_config: Callable[..., Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_TELEMETRY_NOT_SET", raising=False)
    path = write_config({"sources": [{"kind": "simulator"}],
                         "privacy": {"pseudonymization_key": "env://CI_TELEMETRY_NOT_SET"}})
    assert load_config(path).privacy.pseudonymization_key == SecretRef("env://CI_TELEMETRY_NOT_SET")


def test_relative_paths_resolve_against_the_parent_of_the_config_directory(write_config: Callable[..., Path],
                                                                          tmp_path: Path) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}], "staging": {"dir": "stage"}}))
    assert settings.path(settings.staging.dir) == tmp_path / "stage"


def test_a_missing_file_and_invalid_yaml_are_one_line_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "nope.yaml")
    assert str(missing.value) == f"{tmp_path / 'nope.yaml'}: file not found"
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML at line 2"):
        load_config(bad)



def test_the_local_store_caps_duckdb_memory_at_1gb_by_default(write_config: Callable[..., Path]) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}], "warehouse": {"kind": "local"}}))
    assert settings.warehouse.memory_limit == "1GB"


def test_the_etl_load_caps_duckdb_memory_at_64mb_by_default(write_config: Callable[..., Path]) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}], "warehouse": {"kind": "local"}}))
    assert settings.warehouse.load_memory_limit == "64MB"


def test_null_memory_limits_leave_duckdb_its_own_default(write_config: Callable[..., Path]) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}], "warehouse": {
        "kind": "local", "memory_limit": None, "load_memory_limit": None}}))
    assert (settings.warehouse.memory_limit, settings.warehouse.load_memory_limit) == (None, None)


def test_a_memory_limit_without_a_unit_is_one_line(write_config: Callable[..., Path]) -> None:
    path = write_config({"sources": [{"kind": "simulator"}], "warehouse": {"kind": "local", "load_memory_limit": "64"}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: warehouse.load_memory_limit: String should match pattern "
                              "'^\\d+(\\.\\d+)?\\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$'")
