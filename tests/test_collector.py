"""The run's garbage-collector settings hold inside the block and are undone after it."""

from __future__ import annotations

import gc

from etl.collector import RUN_THRESHOLDS, rare_collections


def test_a_run_collects_rarely_and_leaves_the_collector_as_it_found_it() -> None:
    before = gc.get_threshold()
    with rare_collections():
        inside = (gc.get_threshold(), gc.get_freeze_count() > 0)
    assert (inside, gc.get_threshold(), gc.get_freeze_count()) == ((RUN_THRESHOLDS, True), before, 0)


def test_the_collector_is_restored_when_the_run_raises() -> None:
    before = gc.get_threshold()
    try:
        with rare_collections():
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
