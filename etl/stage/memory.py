"""Keep the ETL process's resident memory bounded by a batch, not by the history it has read.

On glibc, memory Python frees is kept by the allocator: each thread that allocates gets its own
arena (up to 8 per core), and blocks under the dynamic mmap threshold (which grows to 32 MB once a
large block is freed) come from those arenas' heaps. The extractor's worker threads decode
megabyte-sized timelines that the staging thread frees, so without limits the process held
hundreds of MB it no longer used (bench/etl_throughput.py, docs/benchmarks.md). Elsewhere (macOS,
musl) both functions do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from typing import Any

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: Blocks from this size on are mapped on their own and returned to the system when freed.
MMAP_THRESHOLD = 128 * 1024
#: Arenas for the whole process: the worker threads share them instead of keeping one each.
ARENA_MAX = 2


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(name)
        if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
            return libc
    return None


@functools.cache
def bound_allocator() -> bool:
    """Set glibc's arena count and a fixed mmap threshold, once per process; whether it could."""
    libc = _libc()
    if libc is None:
        return False
    return all(libc.mallopt(option, value) == 1 for option, value in (
        (_M_ARENA_MAX, ARENA_MAX), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD)))


def release_free_memory() -> None:
    """Give the pages the allocator holds free back to the system (after a batch: its objects are gone)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
