"""The stored functions of `kql/functions`, parsed by duckdb-kql once per change and kept on disk.

duckdb-kql parses each definition with its ANTLR grammar (about 35 ms each, over half a second for
ours), and every process that opened the store paid it again — most of a one-line `query`'s start-up.
The parsed registry is pickled beside the store, under a key that hashes every definition's text,
duckdb-kql's version, the Python version and this module's format: editing, adding or removing a
function file, or upgrading duckdb-kql, re-parses on the next open and replaces the file.

The registry holds ANTLR parse trees, which lowering reads at every call site. Their tokens keep the
input stream they were read from (lowering reads source text back from it); the lexer and parser
objects they point to are not picklable and not needed after parsing, so they are stored as None.

A pickle runs code when loaded: the file is trusted exactly as far as the store beside it is, which
anyone able to write that directory can already change. Any problem reading or writing it (a
read-only directory, a truncated or foreign file) costs a parse, never an error.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Bumped when the file's layout or what is pickled changes.
FORMAT = 1

#: Key -> parsed registry, and key -> its cache file's bytes (None: it cannot be pickled), per process.
_memo: dict[str, Any] = {}
_payloads: dict[str, bytes | None] = {}


def cache_path(store: Path) -> Path:
    """Where the parsed functions of the store at *store* are kept: beside it."""
    return store.with_name(store.name + ".functions.pickle")


def functions_key(definitions: list[str]) -> str:
    """The hash a cached parse must carry to stand for *definitions* with the installed duckdb-kql."""
    import duckdb_kql

    digest = hashlib.sha256()
    for part in (f"format {FORMAT}", f"python {sys.version_info[0]}.{sys.version_info[1]}",
                 f"duckdb-kql {duckdb_kql.__version__}", *definitions):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def parsed(definitions: list[str], cache_file: Path | None = None) -> Any:
    """*definitions* as duckdb-kql's parsed registry: from this process's memory, else from *cache_file*
    when its key matches, else parsed now; *cache_file* is written unless it was just read."""
    key = functions_key(definitions)
    if key not in _memo and cache_file is not None and _read(cache_file, key):
        return _memo[key]
    stale = key not in _memo  # parsed now: whatever the file holds did not serve
    if stale:
        from duckdb_kql.stored_functions import parse_functions

        _memo[key] = parse_functions(definitions)
    if cache_file is not None and (stale or _key_of(cache_file) != key):
        if key not in _payloads:
            _payloads[key] = _dumps(key, _memo[key])
        payload = _payloads[key]
        if payload is not None:
            # Also for another store of this process (tests, `demo`), from the bytes already made.
            _write(cache_file, payload)
    return _memo[key]


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> str | None:
        from antlr4 import Lexer, Parser

        return "recognizer" if isinstance(obj, Lexer | Parser) else None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> None:
        return None


def _key_of(path: Path) -> str | None:
    """The key on the first line of a cache file, or None when there is no readable one."""
    try:
        with path.open("rb") as handle:
            return handle.readline(200).decode("ascii", "replace").strip()
    except OSError:
        return None


def _read(path: Path, key: str) -> bool:
    """Memoize the registry in *path* when the file carries *key*; whether it did."""
    try:
        payload = path.read_bytes()
        first, _, body = payload.partition(b"\n")
        if first.decode("ascii", "replace") != key:
            return False
        functions = _Unpickler(io.BytesIO(body)).load()
    except Exception:  # missing, stale, truncated or foreign: parse instead
        return False
    _memo[key], _payloads[key] = functions, payload
    return True


def _dumps(key: str, functions: Any) -> bytes | None:
    buffer = io.BytesIO()
    buffer.write(key.encode("ascii") + b"\n")
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(functions)
    except (pickle.PicklingError, RecursionError, TypeError, AttributeError):
        return None  # a tree this runtime cannot pickle: stay with parsing once per process
    return buffer.getvalue()


def _write(path: Path, payload: bytes) -> None:
    try:
        # Written aside and renamed, so a concurrent reader sees the old file or the new one, never half.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError:
        return  # a read-only directory: every process parses, as before
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
