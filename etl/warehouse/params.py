"""Query parameters given as text (the command line, Kusto's wire), typed by the query's declaration.

Its own module so `ci-telemetry query` types its `--param` values without importing a backend.
"""

from __future__ import annotations

import re
from typing import Any

_DECLARE = re.compile(r"declare\s+query_parameters\s*\((?P<body>[^;]*)\)\s*;", re.I)
_DECLARED = re.compile(r"(?:^|,)\s*(?P<name>\w+)\s*:\s*(?P<type>\w+)")
_LITERAL = re.compile(r"^\s*(?P<type>[a-z]+)\s*\((?P<inner>.*)\)\s*$", re.I | re.S)
_NUMBER_TYPES = {"long": int, "int": int, "int64": int, "real": float, "double": float}


def typed_parameters(csl: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Text parameter values typed by the query's `declare query_parameters`, as Kusto does it.

    Kusto's wire (and the command line) carries every value as text that the cluster parses as a
    literal of the declared type (`"10"` for a long, `"datetime(2026-01-01)"` for a datetime);
    duckdb-kql 1.1.2 binds Python values and refuses the string `"10"` for a long. `serve` and
    `query --param` use this so both engines accept the same text. String parameters pass through
    untouched — their text is the value, whatever it looks like.
    """
    declared: dict[str, str] = {}
    for match in _DECLARE.finditer(csl):
        for decl in _DECLARED.finditer(match.group("body")):
            declared[decl.group("name")] = decl.group("type").lower()
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        kind = declared.get(name)
        if not isinstance(value, str) or kind in (None, "string"):
            out[name] = value
            continue
        text = value
        literal = _LITERAL.match(value)
        if literal and literal.group("type").lower() in (kind, "datetime", "time", "timespan", "dynamic", "long",
                                                          "int", "real", "double", "bool", "guid"):
            text = literal.group("inner").strip()
        try:
            if kind in _NUMBER_TYPES:
                out[name] = _NUMBER_TYPES[kind](text)
            elif kind in ("bool", "boolean") and text.lower() in ("true", "false"):
                out[name] = text.lower() == "true"
            else:
                out[name] = text
        except ValueError:
            out[name] = value  # duckdb-kql reports the mismatch with the parameter's name
    return out
