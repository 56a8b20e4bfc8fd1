"""The ETL process bounds its allocators: glibc's arenas, and Arrow's buffers taken from that same heap."""

from __future__ import annotations

import pyarrow as pa
import pytest

from etl.stage.memory import bound_allocator, release_free_memory


def test_arrow_allocates_from_the_bounded_glibc_heap_once_the_allocator_is_bound() -> None:
    if not bound_allocator():
        pytest.skip("no glibc here: nothing to bound")
    assert pa.default_memory_pool().backend_name == "system"


def test_buffers_taken_before_the_pool_changed_stay_readable_after_it() -> None:
    before = pa.array(range(1000), pa.int64(), memory_pool=pa.mimalloc_memory_pool())
    bound_allocator()
    release_free_memory()
    assert before.to_pylist()[-3:] == [997, 998, 999]
