"""Warehouse backends: `local` (DuckDB + duckdb-kql) and `kusto` (Azure Data Explorer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.warehouse.base import Warehouse, WarehouseError, read_query, run_query_file

if TYPE_CHECKING:
    from etl.config import Settings

__all__ = ["Warehouse", "WarehouseError", "open_warehouse", "read_query", "run_query_file"]


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    """The configured backend, connected."""
    wh = settings.warehouse
    if wh.kind == "local":
        from etl.warehouse.local import LocalWarehouse

        return LocalWarehouse(settings.path(wh.path), read_only=read_only, memory_limit=wh.memory_limit)
    from etl.warehouse.kusto import KustoWarehouse

    return KustoWarehouse(wh, retention=settings.retention)
