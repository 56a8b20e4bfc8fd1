"""Answers to the schema commands Kusto tools send on connect, from the `kql/` files.

Kusto Explorer, the Azure Data Explorer web UI and the SDKs' schema helpers ask
`.show database <db> schema as json` (or `cslschema`) to learn the tables and functions; duckdb-kql
answers `.show tables`, `.show functions`, `.show databases` and `.show version` itself but not
these. The answers describe the local store as `schema apply` defines it: the tables of
`kql/tables`, and the functions of `kql/functions` (where the local store's `Latest<Table>` views are
plain functions).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from etl.schema import function_files, load_tables

#: Kusto type -> the .NET type name the schema JSON carries beside it.
DOTNET_TYPES = {
    "string": "System.String", "long": "System.Int64", "int": "System.Int32", "real": "System.Double",
    "double": "System.Double", "bool": "System.Boolean", "datetime": "System.DateTime",
    "timespan": "System.TimeSpan", "dynamic": "System.Object", "guid": "System.Guid",
    "decimal": "System.Data.SqlTypes.SqlDecimal",
}

_SCHEMA_COMMAND = re.compile(
    r"^\s*\.show\s+database\s+(?:(?P<db>\[\s*'[^']*'\s*\]|\[\s*\"[^\"]*\"\s*\]|[A-Za-z_][\w.-]*)\s+)?"
    r"(?:schema\s+as\s+(?P<json>json)|(?P<csl>cslschema))\s*;?\s*$",
    re.I,
)
_DEFINITION = re.compile(
    r"^\.create-or-alter\s+function\s+with\s*\((?P<props>.*?)\)\s*\n(?P<name>\w+)\((?P<params>[^)]*)\)\s*(?P<body>\{.*\})\s*$",
    re.S | re.M,
)
_PROPERTY = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
_PARAMETER = re.compile(r"\[?'?(\w+)'?\]?\s*:\s*(\w+)")


@dataclass(frozen=True)
class SchemaCommand:
    """A recognised schema command: the database it names (None: the current one) and its form."""

    database: str | None
    form: str  # "json" or "cslschema"


def parse_schema_command(csl: str) -> SchemaCommand | None:
    """The schema command *csl* is, or None when it is another command."""
    match = _SCHEMA_COMMAND.match(csl)
    if not match:
        return None
    name = match.group("db")
    if name and name.startswith("["):
        name = name[1:-1].strip()[1:-1]
    return SchemaCommand(name, "json" if match.group("json") else "cslschema")


@cache
def _functions() -> tuple[dict[str, Any], ...]:
    out = []
    for path in function_files():
        text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("//"))
        match = _DEFINITION.search(text)
        if not match:
            raise ValueError(f"{path}: cannot read its `.create-or-alter function with (...) Name(...) {{...}}`")
        props = dict(_PROPERTY.findall(match.group("props")))
        out.append({
            "Name": match.group("name"),
            "InputParameters": [{"Name": n, "Type": DOTNET_TYPES.get(t, "System.Object"), "CslType": t}
                                for n, t in _PARAMETER.findall(match.group("params"))],
            "Body": match.group("body"),
            "Folder": props.get("folder", ""),
            "DocString": props.get("docstring", ""),
            "FunctionKind": "Unknown",
            "OutputColumns": [],
        })
    return tuple(out)


def schema_json(database: str) -> str:
    """`.show database <database> schema as json`: the document Kusto tools read on connect."""
    tables = {
        t.name: {
            "Name": t.name,
            "EntityType": "Table",
            "Folder": t.folder,
            "DocString": t.docstring,
            "OrderedColumns": [{"Name": c.name, "Type": DOTNET_TYPES[c.kusto_type], "CslType": c.kusto_type}
                               for c in t.columns],
        }
        for t in load_tables().values()
    }
    document = {
        "Plugins": [],
        "Databases": {database: {
            "Name": database,
            "Tables": tables,
            "ExternalTables": {},
            "MaterializedViews": {},
            "EntityGroups": {},
            "Functions": {f["Name"]: f for f in _functions()},
            "DatabaseAccessMode": "ReadOnly",
        }},
    }
    return json.dumps(document)


def cslschema_rows(database: str) -> list[list[str]]:
    """`.show database <database> cslschema`: TableName, Schema, DatabaseName, Folder, DocString."""
    document = json.loads(schema_json(database))["Databases"][database]
    return [
        [name, ",".join(f"{c['Name']}:{c['CslType']}" for c in t["OrderedColumns"]), database, t["Folder"], t["DocString"]]
        for name, t in document["Tables"].items()
    ]
