"""Staging workers: processes that prepare a batch's builds (`prepare_item`) beside the main process.

Normalizing, scrubbing and typing are pure Python and hold the GIL, so without workers one run uses
one core however many the machine has (bench/etl_throughput.py, docs/benchmarks.md). With
`staging.workers: N`, each build bundle is pickled by the main process and prepared by one of N
processes; the main process keeps extracting, writes the results in the items' order and loads. A
batch stages the same rows and raw lines with or without workers.

What a worker knows: a copy of the run's scrubber and classifier, sent once as it starts, and with each
task the names the main process has learned so far and the secret values it resolved. A build's
timelines travel as their response bodies (`BuildBundle.packed`), which the worker decodes: the main
process read only their outlines (`etl.sources.azure_devops.outline`), and sending bodies costs it less
than pickling records. The names a
worker learns come back with its result. So a name learned from a build that another worker is
preparing at the same moment (at most `IN_FLIGHT_PER_WORKER` × N builds back) is not masked yet in this
one; staging in one process has the same limit for names first seen in later builds.

Only payload types listed in `WORKER_PAYLOADS` go to workers (their normalizers are registered by the
module the worker imports); every other item, one that cannot be pickled (nested past the recursion
limit), and any item whose worker failed, is prepared in the main process, in its turn. A worker that
dies (killed, out of memory) breaks the pool: the rest of the run stages in the main process, with one
line in the log. That holds for a worker killed halfway through sending a result too, which CPython's
pool itself never notices (`StagingWorkers._result`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import pickle
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from etl.classify import Classifier
from etl.collector import RUN_THRESHOLDS
from etl.normalize.batch import WORKER_PAYLOADS
from etl.normalize.context import NormalizeContext
from etl.privacy import Scrubber, apply_policy, scrub_payload
from etl.secret_refs import remember_revealed, revealed_values
from etl.sources.base import Item
from etl.stage.outbox import RowsPolicy
from etl.stage.prepare import Prepared, prepare_item

log = logging.getLogger(__name__)

#: Tasks queued per worker: enough that none waits for the main process, few enough to bound the
#: memory of the pickled builds waiting (about 1 MB per 1,000 timeline records).
IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class _Task:
    """What a worker needs beside the item: the batch's constants and what the main process knows now."""

    source: str
    organization: str
    ingested_at: datetime
    names: frozenset[str]
    revealed: frozenset[str]
    policy: bool


@dataclass
class _Result:
    prepared: Prepared
    #: (source, object, field, reason, payload scrubbed) of each payload the item quarantined, in order.
    quarantined: list[tuple[str, str, str, str, Any]] = field(default_factory=list)
    names: frozenset[str] = frozenset()


# -- in the worker ------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _start_worker(scrubber: Scrubber, classifier: Classifier) -> None:
    from etl.stage.memory import defer_pandas

    defer_pandas()  # as the main process does: a worker builds its arrays from lists too
    import etl.warehouse.rows  # noqa: F401  (typing rows: imported now, so the freeze below covers it)

    # As `rare_collections` does for the main process's run: the worker lives for one run.
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
    _WORKER["scrubber"], _WORKER["classifier"] = scrubber, classifier


def _prepare_in_worker(blob: bytes, task: _Task) -> _Result:
    scrubber: Scrubber = _WORKER["scrubber"]
    remember_revealed(task.revealed)
    missing = task.names - scrubber.known_names()
    if missing:
        scrubber.learn_names(missing)
    before = scrubber.known_names()
    quarantined: list[tuple[str, str, str, str, Any]] = []

    def quarantine(source: str, obj: str, field_name: str, reason: str, payload: Any) -> None:
        # Scrubbed here, so this worker learns the payload's names in the order staging in one process would.
        # One too hostile to scrub stays as it is: the main process's quarantine then keeps it without its payload.
        with contextlib.suppress(RecursionError, ValueError, TypeError, OverflowError):
            payload = scrub_payload(scrubber, payload)
        quarantined.append((source, obj, field_name, reason, payload))

    item = _unpickled(blob)
    ctx = NormalizeContext(task.source, task.organization, task.ingested_at, scrubber, _WORKER["classifier"],
                           quarantine, columns=True)
    policy = (lambda table, rows: apply_policy(scrubber, table, rows)) if task.policy else None
    prepared = prepare_item(ctx, item, policy)
    return _Result(prepared, quarantined, scrubber.known_names() - before)


def _pickled(item: Item) -> bytes:
    """*item* as a task's bytes; a payload that has a `packed` form (kept response bodies) travels as that."""
    packed = getattr(item.payload, "packed", None)
    return pickle.dumps(replace(item, payload=packed()) if packed else item, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickled(blob: bytes) -> Item:
    # A packed payload stays packed: its normalizer decodes it (`BuildBundle.unpacked`), where a body that
    # does not decode quarantines the item instead of failing the task.
    item: Item = pickle.loads(blob)
    return item


# -- in the main process ------------------------------------------------------------------------------


class StagingWorkers:
    """A pool of `count` worker processes for one run (`prepare`); close it when the run ends."""

    def __init__(self, count: int, scrubber: Scrubber, classifier: Classifier) -> None:
        self.count = count
        self.scrubber = scrubber
        self._classifier = classifier
        self._pool: ProcessPoolExecutor | None = None
        self.broken = False

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers are forked from a fresh process, never from this one's threads (the
            # extractor's, DuckDB's); spawn where there is no fork.
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            if method == "forkserver":
                # The fork server imports the normalizers once; its workers share those pages.
                context.set_forkserver_preload([__name__])
            self._pool = ProcessPoolExecutor(self.count, mp_context=context,
                                             initializer=_start_worker, initargs=(self.scrubber, self._classifier))
        return self._pool

    def prepare(self, ctx: NormalizeContext, items: Iterable[Item], policy: RowsPolicy | None,
                ) -> Iterator[tuple[Item, Prepared]]:
        """Each of *items* prepared, in order: the heavy ones by the workers, the rest here in their turn."""
        waiting: deque[tuple[Item, bytes | None, Future[_Result] | None]] = deque()
        limit = self.count * IN_FLIGHT_PER_WORKER
        try:
            for item in items:
                waiting.append(self._submit(ctx, item, policy is not None))
                if len(waiting) >= limit:
                    yield self._collect(ctx, policy, *waiting.popleft())
            while waiting:
                yield self._collect(ctx, policy, *waiting.popleft())
        finally:
            for _, _, future in waiting:
                if future is not None:
                    future.cancel()

    def _submit(self, ctx: NormalizeContext, item: Item, policy: bool) -> tuple[Item, bytes | None, Future[_Result] | None]:
        if self.broken or item.reason is not None or not isinstance(item.payload, WORKER_PAYLOADS):
            return item, None, None
        try:
            blob = _pickled(item)
        except Exception:  # nested past the recursion limit, an object pickle refuses...: prepared here, where
            return item, None, None  # the normalizers report what is wrong with it
        task = _Task(ctx.source, ctx.organization, ctx.ingested_at, self.scrubber.known_names(), revealed_values(),
                     policy)
        try:
            future = self._executor().submit(_prepare_in_worker, blob, task)
        except Exception as exc:  # the pool broke (a worker died) or cannot start: stage here from now on
            self._broke(exc)
            return item, None, None
        # Only the pickle is kept (for preparing here if the worker fails): the decoded build can go.
        return replace(item, payload=None), blob, future

    def _collect(self, ctx: NormalizeContext, policy: RowsPolicy | None, item: Item, blob: bytes | None,
                 future: Future[_Result] | None) -> tuple[Item, Prepared]:
        if future is None:
            return item, prepare_item(ctx, item, policy)
        try:
            result = self._result(future)
        except Exception as exc:  # the worker died, or its result could not come back: prepare it here
            from concurrent.futures.process import BrokenProcessPool

            if isinstance(exc, BrokenProcessPool):
                self._broke(exc)
            else:
                log.debug("a staging worker failed on %s; prepared in the main process", item.obj, exc_info=True)
            assert blob is not None
            return item, prepare_item(ctx, _unpickled(blob), policy)
        self.scrubber.learn_names(result.names)
        for entry in result.quarantined:
            ctx.quarantine(*entry)
        return item, result.prepared

    #: How often a wait for a result checks that every worker is alive.
    LIVENESS_SECONDS = 1.0

    def _result(self, future: Future[_Result]) -> _Result:
        """The task's result; BrokenProcessPool once a worker is dead and the pool still has not said so.

        A worker killed while it writes a result (the OOM killer, at a large one) leaves CPython's pool
        thread reading the rest of that message for ever: no future completes again. So the wait looks at
        the workers every `LIVENESS_SECONDS`; when one has died and the pool has not broken the futures
        within one more such wait, the pool is abandoned (`_abandon`).
        """
        from concurrent.futures.process import BrokenProcessPool

        died = False
        while True:
            try:
                return future.result(timeout=self.LIVENESS_SECONDS)
            except TimeoutError:
                if not self._a_worker_died():
                    continue
                if died:
                    self._abandon()
                    raise BrokenProcessPool("a staging worker died while it sent a result") from None
                died = True

    def _processes(self) -> list[Any]:
        """The pool's worker processes (none before it starts or once it is shut down)."""
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def _a_worker_died(self) -> bool:
        return any(p.exitcode is not None for p in self._processes())

    def _abandon(self) -> None:
        """Kill the workers and close this process's end of their result pipe, so that a pool thread stuck in
        a half-written result reads the end of it and stops (else it also holds up this process's exit)."""
        pool = self._pool
        if pool is None:
            return
        processes = self._processes()
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(5)
        with contextlib.suppress(Exception):
            pool._result_queue._writer.close()  # type: ignore[attr-defined]
        thread = getattr(pool, "_executor_manager_thread", None)
        if thread is not None:
            thread.join(5)
        self.broken = True

    def _broke(self, exc: BaseException) -> None:
        if not self.broken:
            log.warning("staging workers stopped (%s); the rest of the run stages in the main process",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        self.broken = True

    def close(self) -> None:
        """Stop the workers (they hold nothing that is not staged already)."""
        if self._pool is not None:
            if self.broken or self._a_worker_died():
                self._abandon()  # a pool thread stuck in a half-written result would hold up this process's exit
            with contextlib.suppress(Exception):
                # A broken pool is not waited for: a run must end even if its pool thread cannot.
                self._pool.shutdown(wait=not self.broken, cancel_futures=True)
            self._pool = None


@contextlib.contextmanager
def staging_workers(count: int, scrubber: Scrubber, classifier: Classifier) -> Iterator[StagingWorkers | None]:
    """`StagingWorkers` for a run, or None when *count* is 0 (every item prepared in the main process)."""
    if count <= 0:
        yield None
        return
    workers = StagingWorkers(count, scrubber, classifier)
    try:
        yield workers
    finally:
        workers.close()


__all__ = ["IN_FLIGHT_PER_WORKER", "StagingWorkers", "staging_workers"]
