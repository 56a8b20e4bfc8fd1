"""Shared fixtures: a real DuckDB store with the schema applied, and config files written per test."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl.config import Settings, load_config
from etl.warehouse.local import LocalWarehouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Public payloads copied into the repository (origins and licences in its README), so a plain clone tests.
SAMPLES = PROJECT_ROOT / "tests" / "data" / "samples"

# pytest-httpserver's werkzeug logs every request at INFO; under the CLI's logging setup that would mix
# into the stderr the tests assert on.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[LocalWarehouse]:
    """A fresh local store in a real DuckDB file, schema applied."""
    wh = LocalWarehouse(tmp_path / "warehouse.duckdb")
    wh.apply_schema()
    yield wh
    wh.close()


def config_writer(base: Path) -> Callable[..., Path]:
    """A function writing a config file under base/config/ from a dict; relative paths resolve to base.

    The write_config fixture for one test; module-scoped fixtures that share one run call it on a
    tmp_path_factory directory.
    """

    def write(data: dict[str, Any] | str, name: str = "test.yaml") -> Path:
        cfg_dir = base / "config"
        cfg_dir.mkdir(exist_ok=True)
        path = cfg_dir / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config file under tmp_path/config/ from a dict; relative paths resolve to tmp_path."""
    return config_writer(tmp_path)


#: The project's own failure rules, for tests whose runs classify failures as the product does.
RULES = str(PROJECT_ROOT / "config" / "failure-rules.yaml")


def store_settings(write_config: Callable[..., Path], sources: list[dict[str, Any]], name: str, key_env: str,
                   config_name: str | None = None) -> Settings:
    """Settings of *sources* with a local store and staging named *name* (data/<name>.duckdb, data/<name>-staging),
    the project's failure rules and the pseudonymization key in $*key_env*, written to config/<config_name>
    (default <name>.yaml). One key per test makes the rows of its stores comparable."""
    return load_config(write_config({
        "sources": sources, "warehouse": {"kind": "local", "path": f"data/{name}.duckdb"},
        "staging": {"dir": f"data/{name}-staging"}, "classification": {"rules": RULES},
        "privacy": {"pseudonymization_key": f"env://{key_env}"}}, config_name or f"{name}.yaml"))


def copied_settings(settings: Settings, config_name: str, dest: Path) -> Settings:
    """The settings of config/*config_name* in a copy at *dest* of everything under *settings*' base
    directory (config, store, staging): a test that runs again on a shared run's store works on its own copy."""
    import shutil

    shutil.copytree(settings.base_dir, dest)
    return load_config(dest / "config" / config_name)


@pytest.fixture
def local_settings(write_config: Callable[..., Path]) -> Settings:
    """Settings for a simulator source and a local store, all under tmp_path."""
    path = write_config(
        {
            "sources": [{"kind": "simulator", "name": "simulated", "seed": 7, "days": 3, "builds_per_day": 4}],
            "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"},
            "staging": {"dir": "data/staging"},
        }
    )
    return load_config(path)


def table_counts(settings: Settings, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows per table in the raw tables of the settings' local store (not the deduplicating views)."""
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return {t: int(wh.execute_sql(f'SELECT count(*) FROM "{t}"')[0][0]) for t in tables}
    finally:
        wh.close()


def store_rows(settings: Settings, sql: str) -> list[tuple]:
    """The rows of a SQL query over the settings' local store (the raw tables)."""
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return [tuple(r) for r in wh.execute_sql(sql)]
    finally:
        wh.close()


def text_cells(path: Path) -> str:
    """Every string and dynamic value of every table of a local store, read through SQL (the file may be compressed)."""
    wh = LocalWarehouse(path, read_only=True)
    try:
        cells = []
        for name, columns in wh.list_tables().items():
            for column, kusto_type in columns:
                if kusto_type in ("string", "dynamic"):
                    rows = wh.execute_sql(f'SELECT CAST("{column}" AS VARCHAR) FROM "{name}" WHERE "{column}" IS NOT NULL')
                    cells.extend(r[0] for r in rows)
        return "\n".join(cells)
    finally:
        wh.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slow end-to-end tests first (stable: the rest keep their order).

    xdist hands tests out in collection order; a slow test started last keeps one worker busy while
    the other has nothing left, so starting the longest ones first lets both finish together.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
