"""A query's answer for a reader that prints it: its one value as text, or the DataFrame `query` returns.

`Warehouse.query` answers a DataFrame, and building one means importing pandas (about 0.4 s, more
than a one-line query takes to run). `ci-telemetry query "T | count"` prints a single value, so
`Warehouse.query_result` reads a one-row, one-column answer of a plain type without pandas; any
other answer comes back as the DataFrame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: DuckDB column types whose non-null Python value prints (`str()`) exactly as the DataFrame cell
#: DuckDB makes of it does. Not INTERVAL: pandas prints `0 days 01:00:00` where Python prints `1:00:00`.
PLAIN_TYPES = frozenset({"BIGINT", "INTEGER", "DOUBLE", "BOOLEAN", "VARCHAR", "TIMESTAMP", "JSON"})



def is_command(kql: str) -> bool:
    """Whether *kql* is a management command (`.set-or-replace ...`): one that may write, so it runs once."""
    for line in kql.splitlines():
        text = line.strip()
        if text and not text.startswith("//"):
            return text.startswith(".")
    return False


@dataclass(frozen=True)
class QueryResult:
    """Either the text of a one-value answer read without a DataFrame, or the answer's DataFrame."""

    frame: pd.DataFrame | None = None
    #: `str()` of the value of a one-row, one-column answer, when it was read without a DataFrame.
    text: str | None = None

    def single_text(self) -> str | None:
        """The text of the single value of a one-row, one-column answer, as `str()` of its DataFrame
        cell prints it; None for any other shape."""
        if self.text is not None:
            return self.text
        if self.frame is not None and self.frame.shape == (1, 1):
            return str(self.frame.iloc[0, 0])
        return None
