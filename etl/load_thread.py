"""A run's loads on one thread of their own, so that a batch loads while the next one stages.

The run loop (etl/run.py) stages the next batch (of the same scope, or the next scope's first)
while a batch loads here, then waits for that load before it starts another. So the store sees one
load at a time, in the order the batches were read, and a scope decides whether a batch may advance
its watermark only once the batch before it has loaded: the rules of loading in line.

This pays on 2 cores because the local store's load reads its staged files inside DuckDB
(`LocalWarehouse.ingest_staged`): it holds the GIL only between DuckDB's tasks, while staging holds
it most of the time (docs/benchmarks.md, "Each batch loaded beside the next one's staging").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from etl.load import RunStatus
from etl.load_step import BatchLoader
from etl.stage.outbox import Manifest

Settle = Callable[[RunStatus], None]


class LoadThread:
    """At most one batch loading in the background; `wait` for it before the next one `start`s."""

    def __init__(self, loader: BatchLoader, executor: ThreadPoolExecutor) -> None:
        self._loader = loader
        self._executor = executor
        self._running: tuple[Future[RunStatus], Manifest, Settle] | None = None

    def start(self, manifest: Manifest, advance: bool, then: Settle) -> None:
        """Begin loading *manifest* (`BatchLoader.load`); `wait` hands its status to *then*.

        The previous load must have been waited for.
        """
        if self._running is not None:
            raise RuntimeError(f"batch {manifest.batch_id} started while {self._running[1].batch_id} is loading")
        # Counted now, not when the thread gets to it: staging the next batch skips ids attempted in this run.
        self._loader.attempted.add(manifest.batch_id)
        self._running = (self._executor.submit(self._loader.load, manifest, advance), manifest, then)

    def wait(self) -> None:
        """Wait for the batch loading, if any, and hand its status to its `then` (on the calling thread)."""
        if self._running is None:
            return
        running, _, then = self._running
        self._running = None
        then(running.result())  # `load` returns a status for any Exception; others are raised here


@contextlib.contextmanager
def load_thread(loader: BatchLoader) -> Iterator[LoadThread]:
    """A load thread for one run; leaving waits for the batch still loading (a load is never abandoned
    halfway through its transaction)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ci-telemetry-load") as executor:
        loads = LoadThread(loader, executor)
        try:
            yield loads
        finally:
            with contextlib.suppress(Exception):  # after an error: the run is ending, and that error is raised
                loads.wait()
