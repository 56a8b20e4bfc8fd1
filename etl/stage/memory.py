"""Keep the ETL process's resident memory bounded by a batch, not by the history it has read.

On glibc, memory Python frees is kept by the allocator: each thread that allocates gets its own
arena (up to 8 per core), and blocks under the dynamic mmap threshold (which grows to 32 MB once a
large block is freed) come from those arenas' heaps. The extractor's worker threads decode
megabyte-sized timelines that the staging thread frees, so without limits the process held
hundreds of MB it no longer used (bench/etl_throughput.py, docs/benchmarks.md). Elsewhere (macOS,
musl) the glibc settings and trimming do nothing.

Arrow's own default pool (mimalloc in the pyarrow wheels) keeps what it frees too, in per-thread heaps
that releasing from the staging thread does not reach (Parquet is read and written on Arrow's
threads): about 100 MB at the peak, in a 1 GB mapping. The ETL routes Arrow through the bounded glibc
allocator instead: both pyarrow's default and the C++ library's, which only an environment variable
set before pyarrow loads can choose.

pyarrow also imports pandas (about 40 MB resident) on its first array, only to ask whether the input
is a pandas object; the `etl` command builds its arrays from lists, so it keeps pyarrow from doing that.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib.abc
import os
import sys
from typing import Any

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: Blocks from this size on are mapped on their own and returned to the system when freed. Under it they come
#: from the arenas' heaps and are reused: a timeline's body and the copies raw staging makes of it (1-2 MB each)
#: mapped afresh cost a page fault per 4 KB, 1.3-1.8 s of system time in a 13 s run at 128 KB (docs/benchmarks.md).
MMAP_THRESHOLD = 4 << 20
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
    """Set glibc's arena count and a fixed mmap threshold, and make it Arrow's pool, once per process; whether it could."""
    libc = _libc()
    if libc is None:
        return False
    if "pyarrow" not in sys.modules:
        # Arrow's C++ code (Parquet reads and writes, compute kernels) allocates from the pool this names,
        # read when libarrow first allocates; `set_memory_pool` below changes only pyarrow's own default.
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    import pyarrow as pa  # the ETL stages and loads through Arrow: imported for it anyway

    pa.set_memory_pool(pa.system_memory_pool())  # earlier buffers still return to the pool they came from
    return all(libc.mallopt(option, value) == 1 for option, value in (
        (_M_ARENA_MAX, ARENA_MAX), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD)))


@functools.cache
def defer_pandas() -> bool:
    """Keep pyarrow from importing pandas for the rest of the process, unless pandas is asked for; whether it did.

    pyarrow imports pandas (about 40 MB resident) on its first array from Python objects and when
    `pyarrow.dataset` loads (DuckDB loads it to scan an Arrow table), only to recognise pandas inputs,
    and remembers the answer. With both first tries failing, pyarrow treats inputs as plain Python
    objects; a call that needs pandas (`to_pandas`, `from_pandas`) still imports it and works. What
    no longer works once pandas is imported later: pandas' own missing values (`pd.NA`, `pd.NaT`)
    inside Python lists are not read as nulls. So only a process that never builds Arrow arrays from
    pandas values may call it (`ci-telemetry etl` on the local store: its rows are lists of Python
    values), and before other threads start: for that moment an import of pandas fails.
    """
    if "pandas" in sys.modules:
        return False
    bound_allocator()  # first: it chooses Arrow's pool, which must happen before pyarrow allocates
    import pyarrow as pa

    refuse = _RefusePandas()
    sys.meta_path.insert(0, refuse)  # (a None in sys.modules would not do: Cython's import takes it as the module)
    try:
        pa.array([0], type=pa.int8())  # the Python shim's one try
        pa.scalar(True)  # the C++ converter's one try (what pyarrow.dataset's import runs)
    finally:
        sys.meta_path.remove(refuse)
    return "pandas" not in sys.modules


class _RefusePandas(importlib.abc.MetaPathFinder):
    """An import finder under which `import pandas` fails."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "pandas":
            raise ImportError("pandas is not imported for pyarrow's first array")


def release_free_memory() -> None:
    """Give the pages the allocators hold free back to the system (after a batch: its objects are gone)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
    arrow = sys.modules.get("pyarrow")  # not imported for it: a process without Arrow has no pool to release
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
