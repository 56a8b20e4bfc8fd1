"""A table's rows held column by column, for the tables too long to build a dict per row.

A normalizer may hand staging `Columns` instead of a list of row dicts; the privacy policy
(`etl.privacy.apply_policy`) and the typing (`etl.warehouse.rows.to_arrow`) read either. A column is
a list of Python values, as a row dict would hold them, or an Arrow array already of the table's type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Columns:
    """*length* rows as columns: name -> values (a list, or an Arrow array); a column left out is null."""

    data: dict[str, list[Any] | pa.Array]
    length: int

    def __len__(self) -> int:
        return self.length

    def values(self, name: str) -> list[Any]:
        """One column's values as Python objects (None throughout for a column left out)."""
        column = self.data.get(name)
        if column is None:
            return [None] * self.length
        return column if isinstance(column, list) else column.to_pylist()

    def rows(self, names: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """The rows as dicts of the columns *names* (default: every column held), in order."""
        names = list(self.data) if names is None else list(names)
        for values in zip(*(self.values(n) for n in names), strict=True):
            yield dict(zip(names, values, strict=True))

