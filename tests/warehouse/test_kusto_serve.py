"""`ci-telemetry serve` as Kusto tools see it: a default connection string, the commands sent on
connect, and the refusals that keep a web page from reading the store (DNS rebinding, other origins).

A real azure-kusto-data client talks to a real server on 127.0.0.1 over a real DuckDB file.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoServiceError

from etl.schema import function_files, function_name, load_tables
from etl.warehouse.local import LocalWarehouse
from etl.warehouse.serve import build_server, is_loopback_host

BUILDS = [
    {"Organization": "contoso", "Project": "Engineering", "BuildId": 101, "Result": "failed",
     "Definition": "ci\\main", "QueueTime": "2026-01-02T00:00:00Z", "IngestedAt": "2026-01-03"},
    {"Organization": "contoso", "Project": "Platform", "BuildId": 7, "Result": "succeeded",
     "Definition": "pr", "QueueTime": "2026-01-04T00:00:00Z", "IngestedAt": "2026-01-03"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    path = tmp_path_factory.mktemp("serve") / "warehouse.duckdb"
    local = LocalWarehouse(path)
    local.apply_schema()
    local.ingest("TimelineBuilds", BUILDS, "batch-1")
    local.close()
    server = build_server(path, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def client(server) -> Iterator[KustoClient]:
    """A client with the default connection string: a cluster URL and no database."""
    client = KustoClient(KustoConnectionStringBuilder.with_no_authentication(server.url))
    yield client
    client.close()


def post(server, headers: dict[str, str], csl: str = ".show databases") -> tuple[int, dict]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    body = json.dumps({"db": "warehouse", "csl": csl}).encode()
    connection.request("POST", "/v1/rest/mgmt", body=body, headers={"Content-Type": "application/json", **headers})
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


# -- a Kusto client with its default connection --------------------------------


def test_a_default_connection_lists_the_stores_database(client: KustoClient) -> None:
    # No database given: the SDK sends NetDefaultDB, which serve takes for the cluster level.
    rows = client.execute_mgmt(None, ".show databases").primary_results[0]
    assert [r["DatabaseName"] for r in rows] == ["warehouse"]


def test_a_default_connection_reads_the_schema_as_json_with_every_table_and_function(client: KustoClient) -> None:
    text = client.execute_mgmt(None, ".show database warehouse schema as json").primary_results[0].raw_rows[0][0]
    database = json.loads(text)["Databases"]["warehouse"]
    assert sorted(database["Tables"]) == sorted(load_tables())
    builds = database["Tables"]["TimelineBuilds"]
    assert builds["Folder"] == "Builds"
    assert builds["OrderedColumns"][:3] == [{"Name": "Organization", "Type": "System.String", "CslType": "string"},
                                            {"Name": "Project", "Type": "System.String", "CslType": "string"},
                                            {"Name": "BuildId", "Type": "System.Int64", "CslType": "long"}]
    assert sorted(database["Functions"]) == sorted(function_name(p.read_text()) for p in function_files())
    assert database["Functions"]["TopSignatures"]["InputParameters"] == [
        {"Name": "since", "Type": "System.DateTime", "CslType": "datetime"},
        {"Name": "top", "Type": "System.Int64", "CslType": "long"}]


def test_cslschema_lists_each_table_with_its_columns(client: KustoClient) -> None:
    rows = client.execute_mgmt("warehouse", ".show database warehouse cslschema").primary_results[0]
    by_table = {r["TableName"]: r["Schema"] for r in rows}
    assert sorted(by_table) == sorted(load_tables())
    assert by_table["EtlWatermarks"].split(",")[:2] == ["Source:string", "Organization:string"]


def test_show_tables_functions_and_version_answer_from_the_store(client: KustoClient) -> None:
    tables = [r["TableName"] for r in client.execute_mgmt(None, ".show tables").primary_results[0]]
    assert sorted(tables) == sorted(load_tables())
    functions = [r["Name"] for r in client.execute_mgmt(None, ".show functions").primary_results[0]]
    assert sorted(functions) == sorted(function_name(p.read_text()) for p in function_files())
    version = client.execute_mgmt(None, ".show version").primary_results[0]
    assert version.rows_count == 1


def test_a_parameterized_query_and_a_stored_view_run_on_the_listed_database(client: KustoClient) -> None:
    properties = ClientRequestProperties()
    properties.set_parameter("p", "Platform")
    query = "declare query_parameters(p:string); TimelineBuilds | where Project == p | project BuildId"
    assert client.execute_query("warehouse", query, properties).primary_results[0].raw_rows == [[7]]
    assert client.execute_query("warehouse", "LatestTimelineBuilds() | count").primary_results[0].raw_rows == [[2]]
    assert client.execute_query("warehouse", "LatestTimelineBuilds | count").primary_results[0].raw_rows == [[2]]


def test_a_schema_request_for_another_database_is_not_found(client: KustoClient) -> None:
    with pytest.raises(KustoServiceError, match="database 'sales' is not served here"):
        client.execute_mgmt(None, ".show database sales schema as json")


def test_the_store_stays_read_only(client: KustoClient) -> None:
    with pytest.raises(KustoServiceError):
        client.execute_mgmt("warehouse", ".set-or-append TimelineBuilds <| TimelineBuilds")
    assert client.execute_query("warehouse", "TimelineBuilds | count").primary_results[0].raw_rows == [[2]]


# -- refusals -----------------------------------------------------------------------


def test_a_host_that_is_not_loopback_gets_403(server) -> None:
    status, payload = post(server, {"Host": "evil.example"})
    assert status == 403
    assert "Host is not a loopback name or address" in json.dumps(payload)


@pytest.mark.parametrize("host", ["localhost", "localhost:31415", "127.0.0.1:8080", "127.1.2.3", "[::1]:80", "[::1]"])
def test_loopback_hosts_are_served(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:31415", "127.0.0.1.evil.example", "10.0.0.1", "", None,
                                  "localhost.evil.example", "[::2]:80"])
def test_other_hosts_are_refused(host: str | None) -> None:
    assert not is_loopback_host(host)


def test_a_browser_request_from_another_origin_gets_403(server) -> None:
    status, _ = post(server, {"Host": "127.0.0.1", "Origin": "https://evil.example"})
    assert status == 403


def test_the_azure_data_explorer_web_ui_origin_is_answered_with_cors_headers(server) -> None:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("POST", "/v1/rest/mgmt", body=json.dumps({"db": "NetDefaultDB", "csl": ".show databases"}),
                       headers={"Origin": "https://dataexplorer.azure.com", "Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 200
    assert response.getheader("Access-Control-Allow-Origin") == "https://dataexplorer.azure.com"


def test_a_preflight_with_a_foreign_host_gets_403(server) -> None:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("OPTIONS", "/v1/rest/mgmt", headers={"Host": "evil.example",
                                                            "Origin": "https://dataexplorer.azure.com"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 403


def test_allowed_origins_come_from_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    LocalWarehouse(path).close()
    server = build_server(path, port=0, allowed_origins=("https://dataexplorer.azure.us",))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        assert post(server, {"Origin": "https://dataexplorer.azure.com"})[0] == 403
        assert post(server, {"Origin": "https://dataexplorer.azure.us"})[0] == 200
    finally:
        server.shutdown()
        server.server_close()
