"""`ci-telemetry freshness --max-age`: exit 0 when the newest build is recent, 1 when stale or absent, 2 on bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.freshness import check_freshness, format_age, parse_age
from etl.warehouse.local import LocalWarehouse

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("90m", timedelta(minutes=90)), ("2h", timedelta(hours=2)), ("1d", timedelta(days=1)),
    ("1h30m", timedelta(minutes=90)), ("45s", timedelta(seconds=45)), ("2w", timedelta(days=14)),
    (" 3H ", timedelta(hours=3)),
])
def test_ages_are_read_with_their_unit(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["2", "h", "2 hours", "-1h", "0m", "", "2h garbage"])
def test_an_unreadable_age_is_rejected_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="age"):
        parse_age(text)


def test_ages_are_shown_in_their_two_largest_units() -> None:
    assert [format_age(timedelta(seconds=s)) for s in (12, 600, 3600, 3900, 86400, 97200)] == [
        "12s", "10m", "1h", "1h 5m", "1d", "1d 3h"]


def builds(warehouse: LocalWarehouse, *finish_times: str) -> None:
    warehouse.ingest("TimelineBuilds", [
        {"Organization": "o", "Project": "p", "BuildId": i, "FinishTime": t, "IngestedAt": "2026-06-01T11:59:00Z"}
        for i, t in enumerate(finish_times)
    ], "b")


def test_the_newest_finish_time_decides_not_the_ingestion_time(warehouse: LocalWarehouse) -> None:
    builds(warehouse, "2026-05-30T08:00:00Z", "2026-06-01T09:00:00Z")
    result = check_freshness(warehouse, timedelta(hours=2), NOW)
    assert (result.fresh, result.line()) == (False, "stale: newest build finished 2026-06-01T09:00:00Z, 3h ago (limit 2h)")


def test_a_build_within_the_limit_is_fresh(warehouse: LocalWarehouse) -> None:
    builds(warehouse, "2026-06-01T11:15:00Z")
    result = check_freshness(warehouse, timedelta(hours=2), NOW)
    assert (result.fresh, result.line()) == (True, "fresh: newest build finished 2026-06-01T11:15:00Z, 45m ago (limit 2h)")


def test_an_empty_store_is_stale(warehouse: LocalWarehouse) -> None:
    result = check_freshness(warehouse, timedelta(hours=2), NOW)
    assert (result.fresh, result.builds, result.line()) == (False, 0, "stale: no builds ingested yet (limit 2h)")


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    return write_config({"sources": [{"kind": "inbox", "name": "uploads", "path": "inbox"}],
                         "warehouse": {"kind": "local", "path": "warehouse.duckdb"}})


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["freshness", *args])
    return result.exit_code, result.output


def test_command_exits_0_when_fresh(warehouse: LocalWarehouse, config: Path) -> None:
    builds(warehouse, (datetime.now(UTC) - timedelta(minutes=20)).isoformat())
    warehouse.close()
    code, output = run("--max-age", "2h", "--config", str(config))
    assert (code, output.startswith("fresh: newest build finished ")) == (0, True)


def test_command_exits_1_with_one_line_when_stale(warehouse: LocalWarehouse, config: Path) -> None:
    builds(warehouse, (datetime.now(UTC) - timedelta(hours=3)).isoformat())
    warehouse.close()
    code, output = run("--max-age", "90m", "--config", str(config))
    assert (code, len(output.splitlines()), output.endswith("ago (limit 1h 30m)\n")) == (1, 1, True)


def test_command_exits_1_when_no_build_was_ingested(warehouse: LocalWarehouse, config: Path) -> None:
    warehouse.close()
    assert run("--max-age", "1d", "--config", str(config)) == (1, "stale: no builds ingested yet (limit 1d)\n")


def test_command_exits_1_when_the_store_does_not_exist(config: Path, tmp_path: Path) -> None:
    assert run("--config", str(config)) == (
        1, f"stale: no builds ingested yet (store {tmp_path / 'warehouse.duckdb'} does not exist)\n")


def test_command_exits_2_on_an_unreadable_age(config: Path) -> None:
    code, output = run("--max-age", "two hours", "--config", str(config))
    assert code == 2
    assert "cannot read age 'two hours'" in output


def test_freshness_reads_the_same_through_a_kusto_endpoint(warehouse: LocalWarehouse) -> None:
    """The cluster code path: azure-kusto-data against `ci-telemetry serve` over the same DuckDB file."""
    import threading

    from etl.config import KustoWarehouse as KustoSettings
    from etl.warehouse.kusto import KustoWarehouse
    from etl.warehouse.serve import build_server

    builds(warehouse, "2026-05-31T23:00:00Z", "2026-06-01T10:30:00Z")
    path = warehouse.path
    warehouse.close()
    server = build_server(path, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    kusto = KustoWarehouse(KustoSettings(cluster_url=server.url, database="warehouse", auth="none"))
    try:
        result = check_freshness(kusto, timedelta(hours=2), NOW)
    finally:
        kusto.close()
        server.shutdown()
        server.server_close()
    assert (result.builds, result.line()) == (2, "fresh: newest build finished 2026-06-01T10:30:00Z, 1h 30m ago (limit 2h)")
