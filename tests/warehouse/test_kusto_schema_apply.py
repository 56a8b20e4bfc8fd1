"""`schema apply` on a cluster: what azure-kusto-data sends, at the HTTP layer.

A cluster cannot run here, so pytest-httpserver plays its management endpoint (v1 REST) and
records each command. The script sent is the one `schema apply --dry-run --to FILE` writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from etl.cli import app
from etl.config import KustoWarehouse as KustoSettings
from etl.config import Retention
from etl.schema import load_tables
from etl.warehouse.base import WarehouseError
from etl.warehouse.kusto import SCRIPT_HEADER, KustoWarehouse, schema_commands, schema_script


def v1(columns: list[str], rows: list[list[object]]) -> Response:
    table = {"TableName": "Table_0", "Columns": [{"ColumnName": c, "DataType": "String", "ColumnType": "string"}
                                                   for c in columns], "Rows": rows}
    return Response(json.dumps({"Tables": [table]}), content_type="application/json")


def schema_document(functions: dict[str, str], views: tuple[str, ...] = ()) -> str:
    return json.dumps({"Databases": {"CiTelemetry": {
        "Tables": {}, "Functions": {n: {"InputParameters": [], "Body": b} for n, b in functions.items()},
        "MaterializedViews": {v: {"SourceTable": v.removeprefix("Latest"), "Query": "q"} for v in views}}}})


class FakeCluster:
    """Answers the commands `apply_schema` sends; *script_result* makes the script's answer."""

    def __init__(self, script_result: Callable[[list[str]], list[list[object]]]) -> None:
        self.sent: list[str] = []
        self.script_result = script_result
        self.applied = False

    def __call__(self, request: Request) -> Response:
        csl = json.loads(request.get_data())["csl"]
        self.sent.append(csl)
        if csl.startswith(".show database CiTelemetry schema as json"):
            if self.applied:
                return v1(["DatabaseSchema"], [[schema_document({"TopSignatures": "{}"}, ("LatestTimelineBuilds",))]])
            # An older deployment: the view's name is taken by a function.
            return v1(["DatabaseSchema"], [[schema_document({"LatestTimelineBuilds": "{ TimelineBuilds }"})]])
        if csl.startswith(SCRIPT_HEADER):
            self.applied = True
            commands = csl[len(SCRIPT_HEADER) + 1:].split("\n\n")
            return v1(["OperationId", "CommandType", "CommandText", "Result", "Reason"], self.script_result(commands))
        return v1(["Result"], [])


def apply(httpserver: HTTPServer, cluster: FakeCluster) -> list[str]:
    httpserver.expect_request("/v1/rest/mgmt", method="POST").respond_with_handler(cluster)
    warehouse = KustoWarehouse(KustoSettings(cluster_url=httpserver.url_for("").rstrip("/"), database="CiTelemetry",
                                             auth="none"), Retention())
    try:
        return warehouse.apply_schema()
    finally:
        warehouse.close()


def completed(commands: list[str]) -> list[list[object]]:
    return [["1", c.split()[0], c.splitlines()[0], "Completed", ""] for c in commands]


def test_apply_drops_an_older_function_of_a_views_name_then_sends_the_dry_run_script(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    cluster = FakeCluster(completed)
    changes = apply(httpserver, cluster)
    dry_run = tmp_path / "schema.kql"
    assert CliRunner().invoke(app, ["schema", "apply", "--dry-run", "--to", str(dry_run)]).exit_code == 0
    assert cluster.sent[0] == ".show database CiTelemetry schema as json"
    assert cluster.sent[1] == ".drop function LatestTimelineBuilds"
    assert cluster.sent[2] == dry_run.read_text(encoding="utf-8") == schema_script(Retention())
    assert cluster.sent[3] == ".show database CiTelemetry schema as json"
    assert changes == ["created materialized view LatestTimelineBuilds", "created function TopSignatures"]


def test_the_script_holds_every_command_once_in_order() -> None:
    script = schema_script(Retention())
    assert script.startswith(SCRIPT_HEADER + "\n")
    assert script[len(SCRIPT_HEADER) + 1:].rstrip("\n").split("\n\n") == schema_commands(Retention())
    assert len(schema_commands(Retention())) == 5 * len(load_tables()) + 3


def test_a_command_the_cluster_refuses_stops_apply_with_one_line_naming_it(httpserver: HTTPServer) -> None:
    def refuse_views(commands: list[str]) -> list[list[object]]:
        rows = []
        for c in commands:
            if "materialized-view" in c:
                rows.append(["1", "CreateMaterializedView", c.splitlines()[0], "Failed", "Materialized view limit\nmore"])
                break
            rows.append(["1", "x", c.splitlines()[0], "Completed", ""])
        return rows

    with pytest.raises(WarehouseError, match=r"^schema apply stopped at `\.create async ifnotexists materialized-view "
                                             r"with \.\.\.`: Materialized view limit$"):
        apply(httpserver, FakeCluster(refuse_views))
