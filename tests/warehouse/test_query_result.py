"""`query_result`: a one-value answer as the text its DataFrame cell prints, any other as the DataFrame."""

from __future__ import annotations

import pytest

from etl.warehouse.local import LocalWarehouse
from etl.warehouse.result import QueryResult, is_command

ONE_VALUE = [
    "print 1",
    "print x = 1.5",
    "print 1e20",
    "print 0.1 + 0.2",
    "print long(-5)",
    "print int(7)",
    "print 'a'",
    "print s = ''",
    "print true",
    "print datetime(2024-01-01 01:02:03.5)",
    "print dynamic({'a': 1})",
    "print int(null)",
    "print real(null)",
    "print bool(null)",
    "print datetime(null)",
    "print timespan(1h)",
    "TimelineBuilds | count",
]


@pytest.mark.parametrize("kql", ONE_VALUE)
def test_a_one_value_answer_prints_as_its_dataframe_cell(warehouse: LocalWarehouse, kql: str) -> None:
    assert warehouse.query_result(kql).single_text() == str(warehouse.query(kql).iloc[0, 0])


@pytest.mark.parametrize("kql", ["print 1", "print 'a'", "print datetime(2024-01-01)", "TimelineBuilds | count"])
def test_a_plain_non_null_value_is_read_without_a_dataframe(warehouse: LocalWarehouse, kql: str) -> None:
    result = warehouse.query_result(kql)
    assert result.frame is None
    assert result.text == str(warehouse.query(kql).iloc[0, 0])


@pytest.mark.parametrize("kql", ["range x from 1 to 3 step 1", "range x from 1 to 0 step 1", "print a = 1, b = 'x'",
                                 "print timespan(1h)", "print int(null)"])
def test_any_other_answer_is_the_dataframe_query_returns(warehouse: LocalWarehouse, kql: str) -> None:
    result = warehouse.query_result(kql)
    assert result.text is None
    assert result.frame is not None
    assert result.frame.equals(warehouse.query(kql))


def test_a_command_runs_once(warehouse: LocalWarehouse) -> None:
    warehouse.query(".set-or-replace Numbers <| print n = 1")
    warehouse.query_result("// add one row\n.append Numbers <| print n = 2")
    assert warehouse.query("Numbers | count").iloc[0, 0] == 2


def test_a_command_is_told_from_a_query_after_comments_and_blank_lines() -> None:
    assert [is_command(k) for k in ("// note\n\n  .append T <| print 1", "print '.x'", "T\n| where a == '.'", "")] == [
        True, False, False, False]


def test_a_frame_of_one_cell_gives_its_text_and_of_more_cells_none(warehouse: LocalWarehouse) -> None:
    assert QueryResult(frame=warehouse.query("print 42")).single_text() == "42"
    assert QueryResult(frame=warehouse.query("print a = 1, b = 2")).single_text() is None
