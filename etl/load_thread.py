"""A run's loads on one thread of their own, so that a batch loads while the next one stages.

The scope loop (etl/run.py) stages batch N+1 while batch N loads here, then waits for N before it
decides whether N+1 may advance the watermark. So the loads, their order and the watermark's rules
are those of loading in line, and the store sees one load at a time.

This pays on 2 cores because the local store's load reads its staged files inside DuckDB
(`LocalWarehouse.ingest_staged`): it holds the GIL only between DuckDB's tasks, while staging holds
it most of the time (docs/benchmarks.md, "Loading beside staging").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from etl.load import RunStatus
from etl.load_step import BatchLoader
from etl.stage.outbox import Manifest

Loaded = tuple[Manifest, RunStatus]


class LoadThread:
    """At most one batch loading in the background; `wait` for it before the next one `start`s."""

    def __init__(self, loader: BatchLoader, executor: ThreadPoolExecutor) -> None:
        self._loader = loader
        self._executor = executor
        self._running: Future[RunStatus] | None = None
        self._manifest: Manifest | None = None

    def start(self, manifest: Manifest, advance: bool) -> None:
        """Begin loading *manifest* (see `BatchLoader.load`); the previous load must have been waited for."""
        if self._running is not None:
            raise RuntimeError(f"batch {manifest.batch_id} started while {self._manifest and self._manifest.batch_id} "
                               "is loading")
        # Counted now, not when the thread gets to it: staging the next batch skips ids attempted in this run.
        self._loader.attempted.add(manifest.batch_id)
        self._manifest = manifest
        self._running = self._executor.submit(self._loader.load, manifest, advance)

    def wait(self) -> Loaded | None:
        """The batch that was loading and its status, once loaded; None when none was."""
        if self._running is None or self._manifest is None:
            return None
        running, manifest = self._running, self._manifest
        self._running = self._manifest = None
        return manifest, running.result()  # `load` returns a status for any Exception; others are raised here


@contextlib.contextmanager
def load_thread(loader: BatchLoader) -> Iterator[LoadThread]:
    """A load thread for one run; leaving waits for the batch still loading (a load is never abandoned
    halfway through its transaction)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ci-telemetry-load") as executor:
        loads = LoadThread(loader, executor)
        try:
            yield loads
        finally:
            with contextlib.suppress(Exception):  # its status was the caller's to read; an error already raised wins
                loads.wait()
