"""The local store as the configuration opens it: DuckDB's memory cap, and the ETL's reads without pandas."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from etl.config import load_config
from etl.load_step import open_loader
from etl.run_summary import RunSummary
from etl.stage.outbox import Outbox
from etl.state import read_files_seen, read_watermarks
from etl.warehouse import connected
from etl.warehouse.local import LocalWarehouse


def test_the_configured_store_opens_with_the_default_memory_limit(write_config: Callable[..., Path]) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}],
                                         "warehouse": {"kind": "local", "path": "data/capped.duckdb"}}))
    with connected(settings) as warehouse:
        # DuckDB prints 1GB (decimal) in binary units.
        assert warehouse.execute_sql("SELECT current_setting('memory_limit')") == [("953.6 MiB",)]


def test_the_etl_loads_with_the_load_memory_limit(write_config: Callable[..., Path], tmp_path: Path) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}],
                                         "warehouse": {"kind": "local", "path": "data/capped.duckdb"}}))
    outbox = Outbox(tmp_path / "outbox")
    with open_loader(settings, outbox, RunSummary(run_id="r1"), lambda _: None, lambda _, __: None) as loader:
        assert loader.warehouse.execute_sql("SELECT current_setting('memory_limit')") == [("61.0 MiB",)]


def test_query_rows_answers_one_dict_per_row_with_python_values(warehouse: LocalWarehouse) -> None:
    rows = warehouse.query_rows("print Source = 'ado', Watermark = datetime(2024-01-02 03:04:05), N = long(3)")
    assert rows == [{"Source": "ado", "Watermark": datetime(2024, 1, 2, 3, 4, 5), "N": 3}]


def test_query_rows_of_an_empty_answer_is_an_empty_list(warehouse: LocalWarehouse) -> None:
    assert warehouse.query_rows("EtlWatermarks | project Source") == []


def test_watermarks_and_ledger_of_a_fresh_store_are_empty(warehouse: LocalWarehouse) -> None:
    assert read_watermarks(warehouse) == {}
    assert read_files_seen(warehouse, "inbox") == frozenset()


def test_reading_the_watermarks_imports_no_pandas(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from etl.state import read_files_seen, read_watermarks\n"
        "from etl.warehouse.local import LocalWarehouse\n"
        f"wh = LocalWarehouse({str(tmp_path / 'w.duckdb')!r})\n"
        "wh.apply_schema()\n"
        "read_watermarks(wh), read_files_seen(wh, 'inbox')\n"
        "print('pandas' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "False"
