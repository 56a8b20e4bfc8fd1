"""The parsed stored functions are kept beside the store: read on the next open, parsed again when a
definition or duckdb-kql changes (etl/warehouse/function_cache.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb_kql
import duckdb_kql.engine
import duckdb_kql.stored_functions
import pytest

import etl.warehouse.local
from etl.schema import KQL_DIR, function_files
from etl.warehouse import function_cache
from etl.warehouse.local import LocalWarehouse, function_definitions


@pytest.fixture
def new_process(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Forget what this process parsed, as a new process would; returns the function that forgets again."""

    def forget() -> None:
        monkeypatch.setattr(function_cache, "_memo", {})
        monkeypatch.setattr(function_cache, "_payloads", {})

    forget()
    return forget


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per parse of definition texts by duckdb-kql (the number of definitions); handing it an
    already-parsed registry at query time, which it accepts as it is, is no parse."""
    calls: list[int] = []
    real = duckdb_kql.stored_functions.parse_functions

    def counting(definitions: Any) -> Any:
        if isinstance(definitions, list):
            calls.append(len(definitions))
        return real(definitions)

    monkeypatch.setattr(duckdb_kql.stored_functions, "parse_functions", counting)
    return calls


def _open_and_count(path: Path) -> str:
    store = LocalWarehouse(path)
    try:
        store.apply_schema()
        return str(store.query("LatestTimelineBuilds | count").iloc[0, 0])
    finally:
        store.close()


def test_the_first_open_writes_the_parse_beside_the_store(tmp_path: Path, new_process: Callable[[], None],
                                                          parses: list[int]) -> None:
    assert _open_and_count(tmp_path / "w.duckdb") == "0"
    cache = tmp_path / "w.duckdb.functions.pickle"
    assert function_cache.cache_path(tmp_path / "w.duckdb") == cache
    assert cache.read_bytes().split(b"\n", 1)[0].decode() == function_cache.functions_key(function_definitions())
    assert parses == [len(function_files())]


def test_a_second_open_reads_the_cache_instead_of_parsing(tmp_path: Path, new_process: Callable[[], None],
                                                          parses: list[int]) -> None:
    _open_and_count(tmp_path / "w.duckdb")
    new_process()
    assert _open_and_count(tmp_path / "w.duckdb") == "0"
    assert parses == [len(function_files())]


def test_a_changed_function_file_is_parsed_again(tmp_path: Path, new_process: Callable[[], None],
                                                 parses: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    kql = tmp_path / "kql"
    shutil.copytree(KQL_DIR / "functions", kql / "functions")
    monkeypatch.setattr(etl.warehouse.local, "function_files", lambda: function_files(kql))
    store_path = tmp_path / "w.duckdb"
    _open_and_count(store_path)
    new_process()
    _open_and_count(store_path)
    (kql / "functions" / "Answer.kql").write_text(".create-or-alter function Answer() { print x = 42 }\n",
                                                  encoding="utf-8")
    new_process()
    store = LocalWarehouse(store_path)
    try:
        answer = store.query("Answer()")
    finally:
        store.close()
    assert answer.to_dict("records") == [{"x": 42}]
    n = len(function_files())
    assert parses == [n, n + 1]
    key = store_path.with_name("w.duckdb.functions.pickle").read_bytes().split(b"\n", 1)[0].decode()
    assert key == function_cache.functions_key(function_definitions())


def test_another_duckdb_kql_version_parses_again(tmp_path: Path, new_process: Callable[[], None],
                                                 parses: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    _open_and_count(tmp_path / "w.duckdb")
    new_process()
    monkeypatch.setattr(duckdb_kql, "__version__", "0.0.1")
    _open_and_count(tmp_path / "w.duckdb")
    assert parses == [len(function_files())] * 2


def test_a_garbled_cache_file_is_parsed_again_and_replaced(tmp_path: Path, new_process: Callable[[], None],
                                                           parses: list[int]) -> None:
    key = function_cache.functions_key(function_definitions())
    cache = tmp_path / "w.duckdb.functions.pickle"
    cache.write_bytes(key.encode() + b"\nnot a pickle")
    assert _open_and_count(tmp_path / "w.duckdb") == "0"
    assert parses == [len(function_files())]
    new_process()
    assert _open_and_count(tmp_path / "w.duckdb") == "0"
    assert parses == [len(function_files())]


def test_an_in_memory_store_writes_no_cache_file(tmp_path: Path, new_process: Callable[[], None],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    LocalWarehouse(":memory:").close()
    assert list(tmp_path.iterdir()) == []


def test_the_cached_functions_translate_every_stored_query_as_a_fresh_parse(
        tmp_path: Path, new_process: Callable[[], None], warehouse: LocalWarehouse) -> None:
    schema = duckdb_kql.engine.schema(warehouse.con)
    definitions = function_definitions()
    function_cache.parsed(definitions, tmp_path / "functions.pickle")
    new_process()
    cached = function_cache.parsed(definitions, tmp_path / "functions.pickle")
    fresh = duckdb_kql.stored_functions.parse_functions(definitions)
    queries = sorted((KQL_DIR / "queries").glob("*.kql"))
    assert queries
    for path in queries:
        text = path.read_text(encoding="utf-8")
        from_cache = duckdb_kql.to_sql(text, schema=schema, functions=cached)
        assert str(from_cache) == str(duckdb_kql.to_sql(text, schema=schema, functions=fresh)), path
