"""What translating KQL to SQL costs a local query: each query of `kql/queries/`, cold and warm.

The local store runs KQL through duckdb-kql, which parses each query text with its ANTLR grammar and
lowers it to SQL on every call (the stored functions are parsed once: etl/warehouse/function_cache.py).
A cache per query text would only pay if that translation were a real share of a query. This prints, in
one fresh process on a store made by `schema apply`:

- each query's first translation (cold: the grammar's caches are empty, as in a report's process),
- its median over `--runs` further translations (warm, as in `serve` answering the same dashboard),
- and, as the same-run reference, the median time to translate and run `print 1`.

Usage: python bench/kql_translation.py [--runs 5] [--store PATH]   (--store: an existing local store)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm translations per query (median printed)")
    parser.add_argument("--store", type=Path, help="an existing local store (default: a fresh one)")
    args = parser.parse_args()

    import duckdb_kql
    from duckdb_kql.engine import schema as connection_schema  # what `duckdb_kql.kql` translates against

    from etl.warehouse.local import LocalWarehouse

    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            wh = LocalWarehouse(args.store, read_only=True)
        else:
            wh = LocalWarehouse(Path(tmp) / "store.duckdb")
            wh.apply_schema()

        def translate(text: str) -> float:
            start = time.perf_counter()
            duckdb_kql.to_sql(text, schema=connection_schema(wh.con), functions=wh._functions)
            return time.perf_counter() - start

        rows = []
        for path in sorted((ROOT / "kql" / "queries").glob("*.kql")):
            text = path.read_text(encoding="utf-8")
            cold = translate(text)
            warm = statistics.median(translate(text) for _ in range(args.runs))
            rows.append((path.stem, cold, warm))
        reference = []
        for _ in range(args.runs):
            start = time.perf_counter()
            wh.query_rows("print 1")
            reference.append(time.perf_counter() - start)
        wh.close()

    print(f"{'query':32} {'cold ms':>8} {'warm ms':>8}")
    for name, cold, warm in rows:
        print(f"{name:32} {cold * 1e3:8.1f} {warm * 1e3:8.1f}")
    cold_all, warm_all = sum(r[1] for r in rows), sum(r[2] for r in rows)
    ref = statistics.median(reference)
    print(f"all {len(rows)} queries: {cold_all:.2f} s cold, {warm_all:.2f} s warm; `print 1` translated and run: "
          f"{ref * 1e3:.1f} ms (the slowest warm translation is {max(r[2] for r in rows) / ref:.1f}× it)")


if __name__ == "__main__":
    main()
