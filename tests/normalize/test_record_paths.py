"""A timeline record's Path is its ancestors' orders, zero-padded and dotted, whatever order the records come in."""

from __future__ import annotations

from etl.normalize.builds import record_paths

STAGE, PHASE, JOB, TASK = ("stage", None, 2), ("phase", "stage", 1), ("job", "phase", 3), ("task", "job", 12)
EXPECTED = {"stage": "0002", "phase": "0002.0001", "job": "0002.0001.0003", "task": "0002.0001.0003.0012"}


def test_records_listed_after_their_parents_get_their_ancestors_orders() -> None:
    assert record_paths([STAGE, PHASE, JOB, TASK]) == EXPECTED


def test_records_listed_before_their_parents_get_the_same_paths() -> None:
    assert record_paths([TASK, JOB, PHASE, STAGE]) == EXPECTED


def test_a_parent_outside_the_timeline_ends_the_path_at_the_record() -> None:
    assert record_paths([("job", "gone", 3), ("task", "job", None)]) == {"job": "0003", "task": "0003.0000"}


def test_a_parent_cycle_ends_where_the_walk_would_repeat() -> None:
    # a walks b then stops at itself; b then finds a's path known, and ends there.
    assert record_paths([("a", "b", 1), ("b", "a", 2), ("c", "c", 3)]) == {"a": "0002.0001", "b": "0002.0001.0002",
                                                                          "c": "0003"}


def test_the_first_listing_of_a_record_wins() -> None:
    assert record_paths([("job", None, 3), ("job", None, 9), ("task", "job", 1)]) == {"job": "0003",
                                                                                    "task": "0003.0001"}
