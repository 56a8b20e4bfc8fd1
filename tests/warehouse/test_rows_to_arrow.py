"""Rows to an Arrow table typed as the table says: plain columns in one Arrow pass, whatever mapping holds them."""

from __future__ import annotations

from collections import UserDict
from datetime import datetime

import pytest

from etl.schema import table
from etl.warehouse.rows import RowError, to_arrow

ROWS = [
    {"Organization": "o", "Project": "p", "BuildId": 1, "RecordId": "r1", "Attempt": 1, "Name": "Build",
     "RecordOrder": 3.0, "DurationSeconds": 1.5, "StartTime": datetime(2026, 11, 1, 6)},
    {"Organization": "o", "Project": "p", "BuildId": 1, "RecordId": "r2", "Attempt": 2, "ErrorCount": None},
]


def test_rows_as_other_mappings_give_the_table_dicts_give() -> None:
    schema = table("TimelineRecords")
    assert to_arrow(schema, [UserDict(r) for r in ROWS]).equals(to_arrow(schema, ROWS))


def test_plain_columns_keep_their_values_and_absent_ones_are_null() -> None:
    data = to_arrow(table("TimelineRecords"), ROWS).to_pylist()
    assert [(r["RecordId"], r["Attempt"], r["RecordOrder"], r["DurationSeconds"], r["ErrorCount"], r["StartTime"])
            for r in data] == [("r1", 1, 3, 1.5, None, datetime(2026, 11, 1, 6)), ("r2", 2, None, None, None, None)]


def test_a_value_arrow_refuses_is_named_with_its_row_key() -> None:
    rows = [dict(ROWS[0]), {**ROWS[1], "RecordOrder": "third"}]
    with pytest.raises(RowError, match=r"^TimelineRecords \{.*'RecordId': 'r2'.*\}: column RecordOrder: "):
        to_arrow(table("TimelineRecords"), rows)
