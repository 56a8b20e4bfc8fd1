"""The store's schema: one `kql/tables` file per table, parsed the same way both backends read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.schema import load_tables, parse_table, split_commands
from etl.warehouse.local import LocalWarehouse

ARCHITECTURE_TABLES = {
    "TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults",
    "BuildMetrics", "BuildStages", "MetricSamples", "Alerts", "EtlRuns",
}


def test_every_architecture_table_has_a_definition() -> None:
    assert set(load_tables()) >= ARCHITECTURE_TABLES


def test_timeline_records_key_is_record_and_attempt_not_timeline() -> None:
    assert load_tables()["TimelineRecords"].key == ("Organization", "Project", "BuildId", "RecordId", "Attempt")


def test_every_table_file_holds_create_mapping_retention_and_caching() -> None:
    for table in load_tables().values():
        verbs = [c.split()[0] + " " + c.split()[1] for c in split_commands(table.script)]
        assert verbs == [".create-merge table", ".create-or-alter table", ".alter-merge table", ".alter table"], table.name


def test_a_table_file_without_key_line_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "T.kql"
    path.write_text(".create-merge table T (A: string, IngestedAt: datetime) with (folder = 'x')\n")
    with pytest.raises(ValueError, match="no `// key: A, B` line"):
        parse_table(path)


def test_applying_the_schema_twice_changes_nothing(warehouse: LocalWarehouse) -> None:
    assert warehouse.apply_schema() == []


def test_local_store_has_every_column_with_its_kusto_type(warehouse: LocalWarehouse) -> None:
    tables = warehouse.list_tables()
    for table in load_tables().values():
        assert tables[table.name] == [(c.name, c.kusto_type) for c in table.columns]


def test_every_stored_function_runs_on_the_local_engine(warehouse: LocalWarehouse) -> None:
    for name in load_tables():
        assert warehouse.query(f"Latest{name}() | count").iloc[0, 0] == 0


def test_ingesting_the_same_batch_twice_leaves_one_row_per_key(warehouse: LocalWarehouse) -> None:
    rows = [
        {"Organization": "o", "Project": "p", "BuildId": 1, "Result": "failed", "IngestedAt": "2026-01-01T00:00:00Z"},
        {"Organization": "o", "Project": "p", "BuildId": 2, "Result": "succeeded", "IngestedAt": "2026-01-01T00:00:00Z"},
    ]
    warehouse.ingest("TimelineBuilds", rows, "batch-1")
    warehouse.ingest("TimelineBuilds", rows, "batch-1")
    assert warehouse.query("TimelineBuilds | count").iloc[0, 0] == 2


def test_a_newer_row_for_a_key_replaces_the_older(warehouse: LocalWarehouse) -> None:
    base = {"Organization": "o", "Project": "p", "BuildId": 1}
    warehouse.ingest("TimelineBuilds", [{**base, "Result": "failed", "IngestedAt": "2026-01-01"}], "b1")
    warehouse.ingest("TimelineBuilds", [{**base, "Result": "succeeded", "IngestedAt": "2026-01-02"}], "b2")
    frame = warehouse.query("LatestTimelineBuilds | project BuildId, Result")
    assert frame.to_dict(orient="records") == [{"BuildId": 1, "Result": "succeeded"}]


def test_query_parameters_are_bound_not_spliced(warehouse: LocalWarehouse) -> None:
    warehouse.ingest("TimelineBuilds", [{"Organization": "o", "Project": "p", "BuildId": 1, "IngestedAt": "2026-01-01"}], "b")
    hostile = "o' or 1==1 or Organization == '"
    frame = warehouse.query("declare query_parameters(org:string); TimelineBuilds | where Organization == org | count",
                            {"org": hostile})
    assert frame.iloc[0, 0] == 0


def test_schema_apply_dry_run_prints_the_cluster_script_without_connecting() -> None:
    from typer.testing import CliRunner

    from etl.cli import app
    from etl.config import load_config
    from etl.warehouse.kusto import schema_script

    # The production example names a cluster that cannot be reached from here: --dry-run never tries.
    config = Path(__file__).resolve().parents[2] / "config" / "example-production.yaml"
    result = CliRunner().invoke(app, ["schema", "apply", "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output == schema_script(load_config(config).retention)
    days = load_config(config).retention.details_days
    assert f".alter-merge table TestResults policy retention softdelete = {days}d recoverability = enabled" in result.output


def test_schema_apply_to_without_dry_run_is_refused() -> None:
    from typer.testing import CliRunner

    from etl.cli import app

    result = CliRunner().invoke(app, ["schema", "apply", "--to", "x.kql"])
    assert result.exit_code == 2
    assert "--to needs --dry-run" in result.output
