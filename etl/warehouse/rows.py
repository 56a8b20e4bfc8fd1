"""Turn rows (dicts, pandas or Arrow) into an Arrow table typed exactly as a table's schema says.

Both backends load through this: the local one inserts the Arrow table, the cluster one writes it
as JSON lines for its ingestion mapping. A row with a value that cannot be converted raises
RowError naming the table, the row's key and the column.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from etl.columns import Columns
from etl.schema import Column, TableSchema
from etl.timeutil import to_utc_naive

if TYPE_CHECKING:
    import pandas as pd

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


#: How a column converts: "plain" ones straight from Python values (Arrow's own conversion), the rest
#: through their own paths (datetimes may be ISO-8601 text, dynamic values become JSON text).
_COLUMN_KIND = {t: "plain" for t in ARROW_TYPES} | {"datetime": "datetime", "timespan": "timespan", "dynamic": "dynamic"}


class RowError(ValueError):
    """A row does not fit its table."""


#: Field metadata marking a string column as the JSON text of a dynamic column (already valid JSON).
DYNAMIC_METADATA = {b"kusto_type": b"dynamic"}


def arrow_schema(table: TableSchema) -> pa.Schema:
    """The Arrow schema of *table*: one typed field per column, dynamic columns marked as JSON text."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.kusto_type],
                               metadata=DYNAMIC_METADATA if c.kusto_type == "dynamic" else None)
                      for c in table.columns])


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
    if isinstance(value, float) and value != value and kusto_type != "real":  # NaN
        return None
    pandas = sys.modules.get("pandas")  # its missing values, which Arrow may not read as null (etl/stage/memory.py)
    if pandas is not None and (value is pandas.NA or value is pandas.NaT):
        return None
    if kusto_type in ("string", "guid"):
        return str(value)
    if kusto_type in ("long", "int"):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and not value.is_integer():
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


#: Errors a vectorized conversion raises when a column holds something it cannot take as is (pandas'
#: OutOfBoundsDatetime is a ValueError).
_FAST_PATH_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError,
                     OverflowError)


_DATETIME_OR_NONE = {datetime, type(None)}
_DICT = {dict}


def _fast_column(kusto_type: str, values: list[Any]) -> pa.Array | None:
    """A whole column converted at once, or None when only the per-value path can (or should) do it.

    The per-value path is the reference: it accepts every input `_convert` does and names the
    offending row. This one covers the common shapes (native values, typed datetimes) about 10x
    faster, and raises on anything else so the caller falls back.
    """
    arrow_type = ARROW_TYPES[kusto_type]
    if kusto_type in ("string", "guid", "real", "double", "decimal", "bool"):
        return pa.array(values, type=arrow_type, from_pandas=kusto_type not in ("real", "double", "decimal"))
    if kusto_type in ("long", "int"):
        # Arrow would take True as 1: a bool goes to the per-value path, which refuses it. One pass in C.
        if bool in set(map(type, values)):
            return None
        return pa.array(values, type=arrow_type)
    if kusto_type == "datetime":
        if set(map(type, values)) <= _DATETIME_OR_NONE:  # one pass in C, not a generator
            # Typed datetimes (naive UTC or aware): Arrow converts aware ones to UTC itself.
            return pa.array(values, type=arrow_type)
        # Text, pandas Timestamps, dates: the per-value path (`to_utc_naive`, no pandas), which names the
        # row of a value it cannot read.
        return None
    if kusto_type == "dynamic":
        return pa.array([_dynamic(v) for v in values], type=arrow_type)
    return None


def _slow_column(table: TableSchema, kusto_type: str, name: str, values: list[Any], rows: Sequence[Any]) -> pa.Array:
    out = []
    for index, value in enumerate(values):
        try:
            out.append(_convert(kusto_type, value))
        except (TypeError, ValueError) as exc:
            key = {k: rows[index].get(k) for k in table.key}
            raise RowError(f"{table.name} {key}: column {name}: {exc}") from None
    try:
        return pa.array(out, type=ARROW_TYPES[kusto_type])
    except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
        # A value converted but does not fit the column's width (a long over 2**63): name its row.
        for index, value in enumerate(out):
            try:
                pa.array([value], type=ARROW_TYPES[kusto_type])
            except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                key = {k: rows[index].get(k) for k in table.key}
                raise RowError(f"{table.name} {key}: column {name}: {value!r} does not fit a "
                               f"{kusto_type} ({exc})") from None
        raise


def to_arrow(table: TableSchema, rows: pd.DataFrame | pa.Table | Columns | Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with exactly the table's columns and types.

    Columns the rows lack are null; a column the table lacks is an error (a typo in a normalizer
    must not silently drop data).
    """
    if isinstance(rows, pa.Table):
        return _from_arrow(table, rows)
    if isinstance(rows, Columns):
        return _from_columns(table, rows)
    pandas = sys.modules.get("pandas")  # without pandas imported, *rows* cannot be a DataFrame
    if pandas is not None and isinstance(rows, pandas.DataFrame):
        rows = rows.to_dict(orient="records")
    rows = list(rows)
    known = set(table.column_names)
    if not known.issuperset(set().union(*rows)):
        for index, row in enumerate(rows):
            if not known.issuperset(row):
                extra = set(row) - known
                raise RowError(f"{table.name}: row {index} has column(s) not in the table: {sorted(extra)}")
    # Columns whose values Arrow takes exactly as the per-value path would are converted in one C++
    # pass over the rows; datetimes (text or datetimes) and dynamic values get their own paths.
    plain = arrow_schema(table)
    plain = pa.schema([f for f in plain if _COLUMN_KIND[table.column(f.name).kusto_type] == "plain"])
    converted = _plain_columns(rows, plain)
    arrays = {}
    for column in table.columns:
        if converted is not None and column.name in plain.names:
            array = converted.column(column.name)
        else:
            array = _typed_values(table, column, [row.get(column.name) for row in rows], rows)
        arrays[column.name] = _key_checked(table, column, array)
    return pa.table(arrays, schema=arrow_schema(table))


def _plain_columns(rows: list[Any], plain: pa.Schema) -> pa.Table | None:
    """The *plain* columns of *rows* converted by Arrow, or None when some value needs the per-column path."""
    try:
        if set(map(type, rows)) <= _DICT:
            # Dicts as one struct array: Arrow reads each row's values in C++, about 1.6x faster than
            # from_pylist, which first builds a Python list per column. Same converters, same errors.
            return pa.Table.from_struct_array(pa.array(rows, type=pa.struct(list(plain))))
        return pa.Table.from_pylist(rows, schema=plain)  # other mappings
    except _FAST_PATH_ERRORS:
        return None  # some value needs the per-column path (its error names the row)


def _typed_values(table: TableSchema, column: Column, values: list[Any], rows: Sequence[Mapping[str, Any]]) -> pa.Array:
    """*values* as *column*'s Arrow type: the fast conversion, else the per-value one (its error names the row)."""
    try:
        array = _fast_column(column.kusto_type, values)
    except _FAST_PATH_ERRORS:
        array = None
    return array if array is not None else _slow_column(table, column.kusto_type, column.name, values, rows)


def _key_checked(table: TableSchema, column: Column, array: Any) -> Any:
    """*array*, unless it is a key column holding a null (a row the store could not key)."""
    if column.name in table.key and array.null_count:
        raise RowError(f"{table.name}: key column {column.name} is null in some row")
    return array


def _arrow_column(kusto_type: str, field: pa.Field, column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """An Arrow column as the table's type without leaving Arrow, or None when the per-value path must do it."""
    target = ARROW_TYPES[kusto_type]
    if kusto_type == "dynamic":
        # Only text this module produced (marked) is known to be JSON; other text goes through `_dynamic`.
        return column if column.type == target and field.metadata == DYNAMIC_METADATA else None
    if column.type == target:
        return column
    if pa.types.is_null(column.type):
        return pa.chunked_array([pa.nulls(len(column), target)])
    if kusto_type == "datetime" and pa.types.is_timestamp(column.type):
        # An aware timestamp is an instant: dropping its zone keeps the UTC value; finer units truncate.
        naive = pa.timestamp(column.type.unit)
        return column.cast(naive).cast(target, safe=False)
    numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    if kusto_type in ("long", "int", "real", "double", "decimal") and numeric:
        return column.cast(target)  # safe: an overflow or a fractional whole number raises
    if kusto_type in ("string", "guid") and pa.types.is_large_string(column.type):
        return column.cast(target)
    return None


def _from_arrow(table: TableSchema, data: pa.Table) -> pa.Table:
    """An Arrow table as *table*'s columns and types, column by column; a column that Arrow cannot
    cast exactly goes through the per-value path (which names the offending row)."""
    known = set(table.column_names)
    extra = [name for name in data.column_names if name not in known]
    if extra:
        raise RowError(f"{table.name}: column(s) not in the table: {sorted(extra)}")
    rows: list[dict[str, Any]] | None = None
    arrays: dict[str, pa.ChunkedArray | pa.Array] = {}
    for column in table.columns:
        if column.name not in data.column_names:
            arrays[column.name] = pa.nulls(data.num_rows, ARROW_TYPES[column.kusto_type])
            if column.name in table.key and data.num_rows:
                raise RowError(f"{table.name}: key column {column.name} is null in some row")
            continue
        values = data.column(column.name)
        try:
            array = _arrow_column(column.kusto_type, data.schema.field(column.name), values)
        except _FAST_PATH_ERRORS:
            array = None
        if array is None:
            if rows is None:
                rows = data.select([k for k in table.key if k in data.column_names]).to_pylist()
            array = _typed_values(table, column, values.to_pylist(), rows)
        arrays[column.name] = _key_checked(table, column, array)
    return pa.table(arrays, schema=arrow_schema(table))


class _KeysOf(Sequence[dict[str, Any]]):
    """The key values of `Columns`' rows, read one row at a time: only an error message reads them."""

    def __init__(self, table: TableSchema, rows: Columns) -> None:
        self._table, self._rows = table, rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        return {k: self._rows.values(k)[index] for k in self._table.key}


def _from_columns(table: TableSchema, rows: Columns) -> pa.Table:
    """`Columns` as *table*'s columns and types: each list as a column of row dicts converts, each Arrow
    array as `_from_arrow` casts it."""
    extra = [name for name in rows.data if name not in set(table.column_names)]
    if extra:
        raise RowError(f"{table.name}: column(s) not in the table: {sorted(extra)}")
    keys = _KeysOf(table, rows)
    arrays: dict[str, pa.ChunkedArray | pa.Array] = {}
    for column in table.columns:
        values = rows.data.get(column.name)
        array = None
        if values is None:
            array = pa.nulls(len(rows), ARROW_TYPES[column.kusto_type])
        elif not isinstance(values, list):
            try:
                array = _arrow_column(column.kusto_type, pa.field(column.name, values.type), pa.chunked_array([values]))
            except _FAST_PATH_ERRORS:
                array = None
            values = values.to_pylist() if array is None else values
        if array is None:
            array = _typed_values(table, column, values, keys)
        arrays[column.name] = _key_checked(table, column, array)
    return pa.table(arrays, schema=arrow_schema(table))
