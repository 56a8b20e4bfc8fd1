"""The store's schema, read from `kql/tables/*.kql` — the one source of truth both backends use.

The cluster runs those files as written. duckdb-kql does not execute `.create-merge table`, so the
local store reads the column list and the `// key:` line from the same text here. A hand-written
parser is justified: the grammar we need is one command shape we also write ourselves, and no
library parses Kusto management commands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from etl import resources

KQL_DIR = resources.folder("kql")

#: Kusto scalar type -> DuckDB column type.
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "timespan": "INTERVAL",
    "dynamic": "JSON",
    "guid": "VARCHAR",
    "decimal": "DOUBLE",
}
#: Inclusive bounds of the Kusto integer types.
INTEGER_RANGES: dict[str, tuple[int, int]] = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}

_CREATE = re.compile(r"^\.create-merge\s+table\s+(\w+)\s*\((.*?)\)\s*with\s*\(", re.S | re.M)
_COLUMN = re.compile(r"^\s*(\w+)\s*:\s*(\w+)\s*$")
_KEY = re.compile(r"^//\s*key:\s*(.+)$", re.M)
_RETENTION_CLASS = re.compile(r"^//\s*retention:\s*(details|builds|fixed)\b", re.M)
_DOCSTRING = re.compile(r'docstring\s*=\s*"([^"]*)"')
_FOLDER = re.compile(r'folder\s*=\s*"([^"]*)"')


@dataclass(frozen=True)
class Column:
    """One typed column of a table."""

    name: str
    kusto_type: str

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.kusto_type]


@dataclass(frozen=True)
class TableSchema:
    """A table as `kql/tables/<name>.kql` defines it."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    docstring: str
    script: str
    #: `details` keeps settings.retention.details_days, `builds` keeps builds_days, `fixed` keeps
    #: the file's own period (long-term summaries must outlive the raw rows they summarize).
    retention_class: str = "builds"
    #: The folder Kusto tools group the table under (`with (folder = ...)`).
    folder: str = ""

    def retention_days(self, retention: Any) -> int | None:
        """The soft-delete period in days for this table under *retention* settings (None: the file's own)."""
        if self.retention_class == "details":
            return int(retention.details_days)
        if self.retention_class == "builds":
            return int(retention.builds_days)
        return None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")

    @property
    def mapping_name(self) -> str:
        return f"{self.name}_json"


def parse_table(path: Path) -> TableSchema:
    """Parse one table file; raise ValueError naming the file and what is wrong."""
    text = path.read_text(encoding="utf-8")
    match = _CREATE.search(text)
    if not match:
        raise ValueError(f"{path}: no `.create-merge table Name (...) with (...)` command")
    name = match.group(1)
    columns = []
    for part in match.group(2).split(","):
        col = _COLUMN.match(part)
        if not col:
            raise ValueError(f"{path}: cannot read column definition {part.strip()!r}")
        if col.group(2) not in DUCKDB_TYPES:
            raise ValueError(f"{path}: column {col.group(1)} has unknown type {col.group(2)!r}")
        columns.append(Column(col.group(1), col.group(2)))
    key_match = _KEY.search(text)
    if not key_match:
        raise ValueError(f"{path}: no `// key: A, B` line naming the table's key")
    key = tuple(k.strip() for k in key_match.group(1).split(","))
    names = {c.name for c in columns}
    missing = [k for k in key if k not in names]
    if missing:
        raise ValueError(f"{path}: key column(s) {missing} are not columns of {name}")
    if "IngestedAt" not in names:
        raise ValueError(f"{path}: every table needs an IngestedAt datetime column for its deduplicating view")
    doc = _DOCSTRING.search(text[match.end() - 10 :])
    folder = _FOLDER.search(text[match.end() - 10 :])
    retention = _RETENTION_CLASS.search(text)
    return TableSchema(
        name, tuple(columns), key, doc.group(1) if doc else "", text, retention.group(1) if retention else "builds",
        folder.group(1) if folder else "",
    )


@cache
def load_tables(kql_dir: Path = KQL_DIR) -> dict[str, TableSchema]:
    """Every table of the store by name, from `kql/tables/*.kql`."""
    tables = {}
    for path in sorted((kql_dir / "tables").glob("*.kql")):
        table = parse_table(path)
        tables[table.name] = table
    return tables


def table(name: str) -> TableSchema:
    """The schema of one table; KeyError naming the known tables when it does not exist."""
    tables = load_tables()
    if name not in tables:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(tables))}")
    return tables[name]


def function_files(kql_dir: Path = KQL_DIR) -> list[Path]:
    """The stored function definitions (`.create-or-alter function ...`), in name order."""
    return sorted((kql_dir / "functions").glob("*.kql"))


def view_name(table_name: str) -> str:
    """The deduplicating view of a table: `Latest<Table>`, read like a table (no parentheses)."""
    return f"Latest{table_name}"


def is_local_view(path: Path, kql_dir: Path = KQL_DIR) -> bool:
    """Whether a function file is the local store's stand-in for a cluster materialized view.

    The cluster holds `Latest<Table>` as a materialized view, and Kusto allows no function of the
    same name, so these files are never sent there.
    """
    return path.stem in {view_name(t) for t in load_tables(kql_dir)}


def materialized_view_command(table: TableSchema) -> str:
    """`.create async ifnotexists materialized-view` for `Latest<Table>`: the newest row per key.

    `backfill=true` builds it from the rows already in the table (Kusto requires `async` with it);
    `ifnotexists` keeps a second apply a no-op instead of a second backfill.
    """
    keys = ", ".join(table.key)
    return (
        f'.create async ifnotexists materialized-view with (backfill=true, docString="{table.name}, deduplicated: '
        f'latest row per {keys}", folder="Views") {view_name(table.name)} on table {table.name}\n'
        f"{{\n    {table.name}\n    | summarize arg_max(IngestedAt, *) by {keys}\n}}"
    )


# The `with (...)` properties may hold parentheses inside their quoted strings.
_FUNCTION_NAME = re.compile(
    r'^\.create(?:-or-alter)?\s+function\s+(?:with\s*\((?:"[^"]*"|[^)"])*\)\s*)?(\w+)\s*\(', re.M
)
_COMMENT_OR_STRING = re.compile(r"//[^\n]*|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


def function_name(text: str) -> str:
    """The name a `.create-or-alter function` text defines; ValueError when it defines none."""
    match = _FUNCTION_NAME.search(text)
    if not match:
        raise ValueError("no `.create-or-alter function Name(...)` command")
    return match.group(1)


def ordered_functions(paths: Iterable[Path]) -> list[Path]:
    """*paths* ordered so each function comes after the functions its body calls.

    Kusto validates a body when the function is created, so a caller created before its callee
    fails (KS211). Dependencies are read from the bodies (names outside comments and strings);
    ties keep name order so the script is stable. ValueError names a cycle.
    """
    by_name = {function_name(p.read_text(encoding="utf-8")): p for p in paths}
    graph: TopologicalSorter[str] = TopologicalSorter()
    for name, path in by_name.items():
        text = path.read_text(encoding="utf-8")
        body = _COMMENT_OR_STRING.sub(" ", text[_FUNCTION_NAME.search(text).end():])  # type: ignore[union-attr]
        used = set(re.findall(r"\b\w+\b", body))
        graph.add(name, *sorted(n for n in by_name if n in used and n != name))
    try:
        graph.prepare()
    except CycleError as exc:
        raise ValueError(f"stored functions call each other in a cycle: {' -> '.join(exc.args[1])}") from None
    order: list[str] = []
    while graph.is_active():
        ready = sorted(graph.get_ready())
        order.extend(ready)
        graph.done(*ready)
    return [by_name[n] for n in order]


def query_path(name: str, kql_dir: Path = KQL_DIR) -> Path:
    """The path of `kql/queries/<name>.kql`."""
    return kql_dir / "queries" / f"{name}.kql"


def split_commands(script: str) -> list[str]:
    """Split a Kusto script into its commands: blocks separated by blank lines, comments dropped."""
    commands, current = [], []
    for line in script.splitlines():
        if not line.strip():
            if current:
                commands.append("\n".join(current))
                current = []
            continue
        if line.lstrip().startswith("//") and not current:
            continue
        current.append(line)
    if current:
        commands.append("\n".join(current))
    return commands
