"""The `kusto` backend against a real Kusto REST endpoint: `ci-telemetry serve` over a DuckDB file.

Queries, stored functions, parameters and table listing run end to end through azure-kusto-data.
duckdb-kql's endpoint refuses schema management (`.create-merge`, `.show database schema`), so
`apply_schema` is covered by its refusal there plus its command generation and change report,
which are pure functions tested here without a cluster.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from duckdb_kql.server import build_server as plain_duckdb_kql_server

from etl.config import KustoWarehouse as KustoSettings
from etl.config import Retention
from etl.schema import load_tables
from etl.warehouse.base import WarehouseError
from etl.warehouse.kusto import (
    KustoWarehouse,
    SchemaSnapshot,
    connection_string,
    parse_schema_json,
    schema_changes,
    schema_commands,
    typed_parameters,
    with_retention,
)
from etl.warehouse.local import LocalWarehouse, function_definitions
from etl.warehouse.serve import build_server

BUILDS = [
    {"Organization": "contoso", "Project": "Engineering", "BuildId": 101, "Result": "failed",
     "Definition": "ci\\main", "FinishTime": "2026-01-02T03:04:05Z", "Tags": ["nightly"], "IngestedAt": "2026-01-03"},
    {"Organization": "contoso", "Project": "Engineering", "BuildId": 102, "Result": "succeeded",
     "Definition": "ci\\main", "FinishTime": "2026-01-04T00:00:00Z", "IngestedAt": "2026-01-03"},
    {"Organization": "contoso", "Project": "Platform", "BuildId": 7, "Result": "canceled",
     "Definition": "pr", "FinishTime": "2026-01-05T00:00:00Z", "IngestedAt": "2026-01-03"},
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the schema applied and rows loaded through the local backend."""
    path = tmp_path_factory.mktemp("kusto") / "warehouse.duckdb"
    local = LocalWarehouse(path)
    local.apply_schema()
    local.ingest("TimelineBuilds", BUILDS, "batch-1")
    # A newer row for build 101: the stored view must show it, the raw table holds one row per key.
    local.ingest("TimelineBuilds", [{**BUILDS[0], "Result": "succeeded", "IngestedAt": "2026-01-04"}], "batch-2")
    local.close()
    return path


@pytest.fixture(scope="module")
def endpoint(store: Path) -> Iterator[str]:
    server = build_server(store, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def kusto(endpoint: str) -> Iterator[KustoWarehouse]:
    wh = KustoWarehouse(KustoSettings(cluster_url=endpoint, database="warehouse", auth="none"))
    yield wh
    wh.close()


def test_parameterized_query_returns_exactly_the_matching_rows(kusto: KustoWarehouse) -> None:
    frame = kusto.query(
        "declare query_parameters(proj:string, after:datetime);"
        " TimelineBuilds | where Project == proj and FinishTime > after | project BuildId, Result | order by BuildId asc",
        {"proj": "Engineering", "after": datetime(2026, 1, 1)},
    )
    assert frame.to_dict(orient="records") == [
        {"BuildId": 101, "Result": "succeeded"},
        {"BuildId": 102, "Result": "succeeded"},
    ]


def test_long_bool_and_timespan_parameters_are_bound_with_their_declared_types(kusto: KustoWarehouse) -> None:
    frame = kusto.query(
        "declare query_parameters(id:long, flag:bool, span:timespan); print i = id + 1, f = not(flag), s = span",
        {"id": 41, "flag": False, "span": timedelta(hours=2)},
    )
    assert frame.loc[0, "i"] == 42
    assert bool(frame.loc[0, "f"]) is True
    assert frame.loc[0, "s"] == timedelta(hours=2)


def test_a_stored_function_runs_on_the_endpoint(kusto: KustoWarehouse) -> None:
    frame = kusto.query("LatestTimelineBuilds | project BuildId, Result | order by BuildId asc")
    assert frame.to_dict(orient="records") == [
        {"BuildId": 7, "Result": "canceled"},
        {"BuildId": 101, "Result": "succeeded"},
        {"BuildId": 102, "Result": "succeeded"},
    ]


def test_datetime_columns_come_back_as_naive_utc_like_the_local_store(kusto: KustoWarehouse) -> None:
    frame = kusto.query("TimelineBuilds | where BuildId == 101 | project FinishTime")
    assert frame.loc[0, "FinishTime"].to_pydatetime() == datetime(2026, 1, 2, 3, 4, 5)


def test_results_have_the_same_shape_as_the_local_stores(kusto: KustoWarehouse, store: Path) -> None:
    query = ("LatestTimelineBuilds | project BuildId, Tags, QueueSeconds, Attempts, FinishTime, Result"
             " | order by BuildId asc")
    local = LocalWarehouse(store, read_only=True)
    try:
        expected = local.query(query)
    finally:
        local.close()
    got = kusto.query(query)
    assert got["Tags"].tolist()[1] == '["nightly"]'
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_a_hostile_parameter_value_is_a_value_not_query_text(kusto: KustoWarehouse) -> None:
    hostile = "Engineering' or 1==1 or Project == '"
    frame = kusto.query("declare query_parameters(p:string); TimelineBuilds | where Project == p | count", {"p": hostile})
    assert frame.iloc[0, 0] == 0


def test_a_string_parameter_that_looks_like_a_literal_stays_a_string(kusto: KustoWarehouse) -> None:
    frame = kusto.query("declare query_parameters(p:string); print v = p", {"p": "datetime(2026-01-01)"})
    assert frame.iloc[0, 0] == "datetime(2026-01-01)"


def test_list_tables_equals_the_schema_files(kusto: KustoWarehouse) -> None:
    assert kusto.list_tables() == {
        t.name: [(c.name, c.kusto_type) for c in t.columns] for t in load_tables().values()
    }


def test_a_failing_query_raises_one_line_naming_the_problem(kusto: KustoWarehouse) -> None:
    with pytest.raises(WarehouseError, match=r"^Kusto query failed: .*NoSuchTable.* — in: NoSuchTable \| count$"):
        kusto.query("NoSuchTable | count")


def test_apply_schema_on_the_local_endpoint_fails_with_one_line_naming_the_command(kusto: KustoWarehouse) -> None:
    # serve answers the schema itself (Kusto tools ask for it on connect), not the policy details.
    with pytest.raises(WarehouseError, match=r"^Kusto command `\.show tables details \| ...` failed: unsupported"):
        kusto.apply_schema()


def test_sdk_parameters_reach_our_endpoint_but_not_plain_duckdb_kql(store: Path, endpoint: str, tmp_path: Path) -> None:
    """Guards the workaround in etl/warehouse/serve.py: when duckdb-kql decodes string
    `properties` itself, the second assertion fails and the workaround can go."""
    query = "declare query_parameters(p:string); TimelineBuilds | where Project == p | count"
    properties = ClientRequestProperties()
    properties.set_parameter("p", "Platform")
    ours = KustoClient(KustoConnectionStringBuilder.with_no_authentication(endpoint))
    assert ours.execute_query("warehouse", query, properties).primary_results[0].raw_rows == [[1]]

    # A copy: the module's endpoint holds the store read-only, and DuckDB refuses a second open
    # of one file with another configuration in the same process.
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(store, copy)
    plain = plain_duckdb_kql_server(str(copy), port=0, quiet=True, functions=function_definitions())
    thread = threading.Thread(target=plain.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = KustoClient(KustoConnectionStringBuilder.with_no_authentication(plain.url))
        with pytest.raises(Exception, match="declared query parameter with no value"):
            client.execute_query("warehouse", query, properties)
    finally:
        plain.shutdown()
        plain.server_close()


# -- text parameters (the SDK's wire values, `query --param`) -----------------


def test_text_parameters_are_typed_by_the_declaration() -> None:
    csl = "declare query_parameters(n:long, r:real, b:bool, d:datetime, s:string); T"
    got = typed_parameters(csl, {"n": "long(5)", "r": "1.5", "b": "true", "d": "datetime(2026-01-01)", "s": "long(5)"})
    assert got == {"n": 5, "r": 1.5, "b": True, "d": "2026-01-01", "s": "long(5)"}


# -- apply_schema: command generation and the change report ---------------


def test_schema_commands_take_retention_periods_from_settings() -> None:
    commands = schema_commands(Retention(builds_days=400, details_days=30))
    retention = sorted(c for c in commands if "policy retention" in c)
    assert ".alter-merge table TimelineBuilds policy retention softdelete = 400d recoverability = enabled" in retention
    assert ".alter-merge table EtlRuns policy retention softdelete = 400d recoverability = enabled" in retention
    assert ".alter-merge table Alerts policy retention softdelete = 400d recoverability = enabled" in retention
    assert ".alter-merge table TestResults policy retention softdelete = 30d recoverability = enabled" in retention
    assert ".alter-merge table TimelineRecords policy retention softdelete = 30d recoverability = enabled" in retention
    assert len(retention) == len(load_tables())


def test_without_settings_the_retention_in_the_file_is_kept() -> None:
    command = ".alter-merge table TestResults policy retention softdelete = 90d recoverability = enabled"
    assert with_retention(command, None) == command


def test_schema_commands_are_only_idempotent_verbs_tables_then_views_then_functions() -> None:
    commands = schema_commands()
    verbs = [" ".join(c.split()[:4]) if c.startswith(".create async") else " ".join(c.split()[:2]) for c in commands]
    assert set(verbs) == {".create-merge table", ".create-or-alter table", ".alter-merge table",
                          ".alter table", ".create async ifnotexists materialized-view", ".create-or-alter function"}
    first_view = verbs.index(".create async ifnotexists materialized-view")
    first_function = verbs.index(".create-or-alter function")
    assert first_view == 4 * len(load_tables()) and first_function == first_view + len(load_tables())
    assert all(v == ".create-or-alter function" for v in verbs[first_function:])
    # The local store's Latest<Table>() functions are views on the cluster, never functions.
    assert [c.split("\n")[1].split("(")[0] for c in commands[first_function:]] == [
        "DailyBuildTrend", "KnownIssueHits", "TopSignatures"]
    assert not any(line.lstrip().startswith("//") or not line.strip() for c in commands for line in c.splitlines())


SCHEMA_JSON = json.dumps({
    "Plugins": [],
    "Databases": {"CiTelemetry": {
        "Name": "CiTelemetry", "MajorVersion": 3, "MinorVersion": 1,
        "Tables": {"TimelineBuilds": {"Name": "TimelineBuilds", "EntityType": "Table", "Folder": "Builds",
                                      "OrderedColumns": [
                                          {"Name": "Organization", "Type": "System.String", "CslType": "string"},
                                          {"Name": "BuildId", "Type": "System.Int64", "CslType": "long"}]}},
        "Functions": {"LatestTimelineBuilds": {"Name": "LatestTimelineBuilds", "InputParameters": [],
                                               "Body": "{ TimelineBuilds }", "Folder": "Views", "DocString": "d"}},
    }},
})


def test_parse_schema_json_reads_tables_columns_and_functions() -> None:
    tables, functions = parse_schema_json(SCHEMA_JSON, "CiTelemetry")
    assert tables == {"TimelineBuilds": (("Organization", "string"), ("BuildId", "long"))}
    assert json.loads(functions["LatestTimelineBuilds"])["Body"] == "{ TimelineBuilds }"


def test_schema_changes_name_each_created_added_and_altered_object() -> None:
    tables, functions = parse_schema_json(SCHEMA_JSON, "CiTelemetry")
    before = SchemaSnapshot(tables, functions, {"TimelineBuilds_json": "[1]"}, {"TimelineBuilds retention": "a"})
    after = SchemaSnapshot(
        {**tables, "TimelineBuilds": (*tables["TimelineBuilds"], ("Result", "string")), "EtlRuns": (("RunId", "string"),)},
        {**functions, "LatestTimelineBuilds": "changed", "LatestEtlRuns": "new"},
        {"TimelineBuilds_json": "[1, 2]", "EtlRuns_json": "[]"},
        {"TimelineBuilds retention": "b"},
    )
    assert schema_changes(before, after) == [
        "created table EtlRuns",
        "added column TimelineBuilds.Result",
        "created function LatestEtlRuns",
        "altered function LatestTimelineBuilds",
        "created ingestion mapping EtlRuns_json",
        "altered ingestion mapping TimelineBuilds_json",
        "altered policy TimelineBuilds retention",
    ]


def test_a_second_apply_with_nothing_changed_reports_nothing() -> None:
    tables, functions = parse_schema_json(SCHEMA_JSON, "CiTelemetry")
    snapshot = SchemaSnapshot(tables, functions, {"m": "x"}, {"p": "y"})
    assert schema_changes(snapshot, snapshot) == []


# -- authentication -----------------------------------------------------------


def _settings(**values: str) -> KustoSettings:
    return KustoSettings(cluster_url="https://c.westeurope.kusto.windows.net", database="D", **values)


def test_managed_identity_auth_uses_the_configured_client_id() -> None:
    kcsb = connection_string(_settings(auth="managed_identity", client_id="mi-client"), "https://c.kusto.windows.net")
    assert (kcsb.msi_authentication, kcsb.msi_parameters) == (True, {"client_id": "mi-client"})


def test_app_key_auth_resolves_the_secret_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_TELEMETRY_KUSTO_KEY", "app-key-value")
    settings = _settings(auth="app_key", client_id="app", tenant_id="tenant", client_secret="env://CI_TELEMETRY_KUSTO_KEY")
    kcsb = connection_string(settings, settings.resolved_ingest_url)
    assert (kcsb.data_source, kcsb.application_client_id, kcsb.application_key, kcsb.authority_id) == (
        "https://ingest-c.westeurope.kusto.windows.net", "app", "app-key-value", "tenant")
    assert "app-key-value" not in str(kcsb)


def test_app_key_auth_without_its_settings_names_what_is_missing() -> None:
    with pytest.raises(WarehouseError) as info:
        connection_string(_settings(auth="app_key", client_id="app"), "https://c.kusto.windows.net")
    assert str(info.value) == (
        "warehouse.auth is app_key but these settings are missing: warehouse.tenant_id, warehouse.client_secret")


def test_default_auth_uses_azure_identitys_default_credential() -> None:
    kcsb = connection_string(_settings(), "https://c.kusto.windows.net")
    assert type(kcsb.azure_credential).__name__ == "DefaultAzureCredential"
