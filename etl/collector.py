"""Python's cyclic garbage collector, set for a run that allocates millions of containers.

Decoding, validating and normalizing a build creates tens of thousands of dicts and lists, none of
them in a reference cycle: reference counting frees them all. With the default thresholds (700, 10,
10) the collector still traverses them over and over: a large share of normalizing's CPU on .NET-sized
builds (docs/benchmarks.md). `rare_collections` freezes what start-up
created and lets far more allocations pass between collections; cycles are still collected, later.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young collections, then young collections per older one, per oldest one.
RUN_THRESHOLDS = (20_000, 20, 100)


@contextmanager
def rare_collections() -> Iterator[None]:
    """Within the block: start-up's objects frozen (never traversed) and `RUN_THRESHOLDS`; then as before."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
