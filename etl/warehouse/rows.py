"""Turn rows (dicts, pandas or Arrow) into an Arrow table typed exactly as a table's schema says.

Both backends load through this: the local one inserts the Arrow table, the cluster one writes it
as JSON lines for its ingestion mapping. A row with a value that cannot be converted raises
RowError naming the table, the row's key and the column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

from etl.schema import TableSchema

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "guid": pa.string(),
    "long": pa.int64(),
    "int": pa.int32(),
    "real": pa.float64(),
    "double": pa.float64(),
    "decimal": pa.float64(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("us"),
    "timespan": pa.duration("us"),
    "dynamic": pa.string(),  # JSON text; cast to the store's dynamic type on load
}


class RowError(ValueError):
    """A row does not fit its table."""


def arrow_schema(table: TableSchema) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.kusto_type]) for c in table.columns])


def to_utc_naive(value: Any) -> datetime | None:
    """A datetime (or ISO-8601 text) as naive UTC, the way both stores keep datetimes."""
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        value = value.to_pydatetime()
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Azure DevOps sends 7 fractional digits; Python takes at most 6.
        if "." in text:
            head, _, tail = text.partition(".")
            digits = ""
            rest = ""
            for i, ch in enumerate(tail):
                if ch.isdigit():
                    digits += ch
                else:
                    rest = tail[i:]
                    break
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
        value = datetime.fromisoformat(text)
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _dynamic(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        # Already JSON text (e.g. read back from a staged file) or a plain string value.
        try:
            json.loads(value)
            return value
        except ValueError:
            return json.dumps(value)
    return json.dumps(value, default=str, sort_keys=True)


def _convert(kusto_type: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and pd.isna(value) and kusto_type != "real":
        return None
    if kusto_type in ("string", "guid"):
        return str(value)
    if kusto_type in ("long", "int"):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            if pd.isna(value):
                return None
            if not value.is_integer():
                raise ValueError(f"expected a whole number, got {value}")
        return int(value)
    if kusto_type in ("real", "double", "decimal"):
        return float(value)
    if kusto_type == "bool":
        if isinstance(value, str):
            if value.lower() in ("true", "1"):
                return True
            if value.lower() in ("false", "0", ""):
                return False
            raise ValueError(f"expected a boolean, got {value!r}")
        return bool(value)
    if kusto_type == "datetime":
        return to_utc_naive(value)
    if kusto_type == "timespan":
        if isinstance(value, timedelta):
            return value
        return timedelta(seconds=float(value))
    if kusto_type == "dynamic":
        return _dynamic(value)
    raise ValueError(f"unsupported type {kusto_type}")


def to_arrow(table: TableSchema, rows: pd.DataFrame | pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with exactly the table's columns and types.

    Columns the rows lack are null; a column the table lacks is an error (a typo in a normalizer
    must not silently drop data).
    """
    if isinstance(rows, pa.Table):
        rows = rows.to_pylist()
    elif isinstance(rows, pd.DataFrame):
        rows = rows.to_dict(orient="records")
    names = table.column_names
    known = set(names)
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for index, row in enumerate(rows):
        extra = set(row) - known
        if extra:
            raise RowError(f"{table.name}: row {index} has column(s) not in the table: {sorted(extra)}")
        for column in table.columns:
            value = row.get(column.name)
            try:
                columns[column.name].append(_convert(column.kusto_type, value))
            except (TypeError, ValueError) as exc:
                key = {k: row.get(k) for k in table.key}
                raise RowError(f"{table.name} {key}: column {column.name}: {exc}") from None
    for key in table.key:
        if any(v is None for v in columns[key]):
            raise RowError(f"{table.name}: key column {key} is null in some row")
    return pa.table({n: pa.array(columns[n], type=ARROW_TYPES[table.column(n).kusto_type]) for n in names})
