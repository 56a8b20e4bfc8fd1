"""Warehouse backends: `local` (DuckDB + duckdb-kql) and `kusto` (Azure Data Explorer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from etl.warehouse.base import Warehouse, WarehouseError, read_query, run_query_file

if TYPE_CHECKING:
    from etl.config import Settings

__all__ = ["Warehouse", "WarehouseError", "connected", "open_warehouse", "read_query", "run_query_file"]


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    """The configured backend, connected; a writable one applies the privacy policy to every row it ingests."""
    wh = settings.warehouse
    backend: Warehouse
    if wh.kind == "local":
        from etl.warehouse.local import LocalWarehouse

        backend = LocalWarehouse(settings.path(wh.path), read_only=read_only, memory_limit=wh.memory_limit)
    else:
        from etl.warehouse.kusto import KustoWarehouse

        backend = KustoWarehouse(wh, retention=settings.retention)
    if read_only:
        return backend
    from etl.warehouse.policy import PolicyWarehouse

    def scrubber() -> object:
        # Imported on the first write: a query through a writable store never needs the detectors.
        from etl.privacy import scrubber_for

        return scrubber_for(settings)

    return PolicyWarehouse(backend, scrubber)  # type: ignore[return-value]


@contextmanager
def connected(settings: Settings, read_only: bool = False) -> Iterator[Warehouse]:
    """The configured backend for the duration of a `with` block, closed after it."""
    warehouse = open_warehouse(settings, read_only=read_only)
    try:
        yield warehouse
    finally:
        warehouse.close()
