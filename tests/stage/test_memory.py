"""The ETL process bounds its allocators (glibc's arenas, and Arrow's buffers taken from that same heap), and
keeps pyarrow from loading pandas it does not use."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from etl.stage.memory import bound_allocator, release_free_memory
from tests.fresh_interpreter import printed_json


def test_arrow_allocates_from_the_bounded_glibc_heap_once_the_allocator_is_bound() -> None:
    if not bound_allocator():
        pytest.skip("no glibc here: nothing to bound")
    assert pa.default_memory_pool().backend_name == "system"


def test_buffers_taken_before_the_pool_changed_stay_readable_after_it() -> None:
    before = pa.array(range(1000), pa.int64(), memory_pool=pa.mimalloc_memory_pool())
    bound_allocator()
    release_free_memory()
    assert before.to_pylist()[-3:] == [997, 998, 999]


def test_parquet_written_by_arrows_own_code_takes_its_buffers_from_the_glibc_heap_too(tmp_path: Path) -> None:
    # Only an environment variable set before pyarrow loads can choose the pool of Arrow's C++ code (the
    # Parquet writer's buffers); `set_memory_pool` alone leaves that on mimalloc.
    assert printed_json(
        "import json, sys\n"
        "from etl.stage.memory import bound_allocator\n"
        "bound_allocator()\n"
        "import pyarrow as pa, pyarrow.parquet as pq\n"
        "table = pa.table({'a': list(range(100_000))})\n"
        "with pq.ParquetWriter(sys.argv[1], table.schema) as writer:\n"
        "    writer.write_table(table)\n"
        "print(json.dumps([pa.mimalloc_memory_pool().max_memory(), pa.system_memory_pool().max_memory() > 800_000]))\n",
        str(tmp_path / "a.parquet"),
    ) == [0, True]


def test_arrays_tables_parquet_and_a_duckdb_scan_import_no_pandas_once_it_is_deferred() -> None:
    assert printed_json(
        "import json, sys, duckdb, pyarrow as pa, pyarrow.parquet as pq\n"
        "from etl.stage.memory import defer_pandas\n"
        "deferred = defer_pandas()\n"
        "t = pa.table({'a': pa.array([1, None]), 's': pa.array(['x', float('nan')], from_pandas=True)})\n"
        "pq.write_table(t, '/dev/null')\n"
        "con = duckdb.connect()\n"
        "con.register('t', t)\n"
        "rows = con.execute('select * from t').fetchall()\n"
        "print(json.dumps([deferred, rows, 'pandas' in sys.modules]))\n"
    ) == [True, [[1, "x"], [None, None]], False]


def test_pandas_still_loads_and_converts_when_a_call_needs_it_after_it_was_deferred() -> None:
    assert printed_json(
        "import json, sys, pyarrow as pa\n"
        "from etl.stage.memory import defer_pandas\n"
        "defer_pandas()\n"
        "frame = pa.table({'a': [1, 2]}).to_pandas()\n"
        "series = pa.array(frame['a'] * 10)\n"
        "print(json.dumps([type(frame).__name__, series.to_pylist(), 'pandas' in sys.modules]))\n"
    ) == ["DataFrame", [10, 20], True]


def test_pandas_missing_values_still_load_as_nulls_when_pandas_is_imported_after_it_was_deferred() -> None:
    assert printed_json(
        "import json\n"
        "from etl.stage.memory import defer_pandas\n"
        "defer_pandas()\n"
        "import pandas as pd\n"
        "from etl.schema import load_tables\n"
        "from etl.warehouse.rows import to_arrow\n"
        "row = {'Organization': 'o', 'Project': 'p', 'BuildId': 1, 'Definition': pd.NA, 'QueueTime': pd.NaT}\n"
        "table = to_arrow(load_tables()['TimelineBuilds'], [row])\n"
        "print(json.dumps(table.select(['BuildId', 'Definition', 'QueueTime']).to_pylist()))\n"
    ) == [{"BuildId": 1, "Definition": None, "QueueTime": None}]


def test_deferring_pandas_does_nothing_once_pandas_is_imported() -> None:
    assert printed_json(
        "import json, pandas, pyarrow as pa\n"
        "from etl.stage.memory import defer_pandas\n"
        "deferred = defer_pandas()\n"
        "print(json.dumps([deferred, pa.array(pandas.Series(['a', None], dtype='string')).to_pylist()]))\n"
    ) == [False, ["a", None]]
