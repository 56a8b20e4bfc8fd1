"""Reading a timeline for extraction only: msgspec's outline beside orjson and `json.loads` of the whole body.

Extraction reads each timeline only for its audit and its previous attempts
(`etl/sources/azure_devops/outline.py`); the worker decodes the body in full. Extracts builds from the
simulator over loopback (about 1,900 timeline records per build, as `bench/etl_throughput.py`), then times
each reader over the same latest-timeline bodies in this one process (CPU seconds, best of `--repeat`) and
prints µs a record and the ratios of the same run. No wall-clock assertions anywhere: this is a bench.

Run: .venv/bin/python bench/timeline_outline.py [--builds 20] [--records-per-job 400] [--repeat 5]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from normalize_validation import arguments, best, extract


def main() -> None:
    """Extract, time the three readers, print µs a record and the ratios."""
    args = arguments(__doc__)

    import orjson

    from etl.sources.azure_devops.outline import outline

    bodies = [b.encoded[0] for b in extract(args.builds, args.records_per_job) if 0 in b.encoded]
    records = sum(len(orjson.loads(body)["records"]) for body in bodies)
    readers = {"orjson.loads": orjson.loads, "json.loads": json.loads, "outline (msgspec)": outline}
    seconds = {name: best(lambda read=read: [read(body) for body in bodies], args.repeat)
               for name, read in readers.items()}
    print(f"{len(bodies)} timelines, {records:,} records, {sum(map(len, bodies)) / 1e6:.1f} MB")
    for name, spent in seconds.items():
        print(f"  {name:<20} {spent * 1e6 / records:6.2f} µs a record   "
              f"{seconds['orjson.loads'] / spent:5.2f}× orjson.loads' speed")


if __name__ == "__main__":
    main()
