"""Is the store's data recent, and is nothing stuck? The watchdog a scheduled pipeline runs after the ETL.

Freshness is measured on the newest build's `FinishTime` in `LatestTimelineBuilds`, not on
`IngestedAt`: a run that ingests nothing new still writes rows elsewhere (EtlRuns) and may re-ingest
old builds, so IngestedAt can look fresh while Azure DevOps data has stopped arriving. FinishTime
only advances when new builds really reach the store. On a quiet organization (no builds for hours,
e.g. a weekend) the watchdog trips, which is why the age limit is a parameter.

Fresh data is not enough: `outbox_problems` names what the ETL could not finish on this machine —
dead batches, pending batches that failed to load or waited longer than the age limit, and
quarantine entries added within it (a growing quarantine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from etl.stage.outbox import BatchStatus, Outbox
from etl.stage.quarantine import Quarantine
from etl.warehouse.base import Warehouse

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.I)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

NEWEST_BUILD_QUERY = "LatestTimelineBuilds | summarize Newest = max(FinishTime), Builds = count()"


def parse_age(text: str) -> timedelta:
    """`90m`, `2h`, `1d`, `1h30m`, `45s`, `2w` → timedelta; ValueError naming the text otherwise."""
    cleaned = text.strip()
    parts = _AGE.findall(cleaned)
    if not cleaned or _AGE.sub("", cleaned).strip() or not parts:
        raise ValueError(f"cannot read age {text!r}: expected a number and a unit, e.g. 90m, 2h, 1d")
    age = sum((timedelta(**{_UNITS[unit.lower()]: float(n)}) for n, unit in parts), timedelta())
    if age <= timedelta(0):
        raise ValueError(f"age {text!r} must be greater than zero")
    return age


def format_age(age: timedelta) -> str:
    """A short human form: `3d 4h`, `1h 5m`, `42m`, `12s`."""
    seconds = int(age.total_seconds())
    if seconds < 0:
        return f"-{format_age(-age)}"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Freshness:
    """The newest build in the store and whether it is within the age limit."""

    newest: datetime | None
    builds: int
    max_age: timedelta
    now: datetime

    @property
    def age(self) -> timedelta | None:
        return None if self.newest is None else self.now - self.newest

    @property
    def fresh(self) -> bool:
        return self.age is not None and self.age <= self.max_age

    def line(self) -> str:
        """One line for a log or a pipeline step."""
        limit = format_age(self.max_age)
        if self.newest is None:
            return f"stale: no builds ingested yet (limit {limit})"
        state = "fresh" if self.fresh else "stale"
        assert self.age is not None
        return f"{state}: newest build finished {_iso(self.newest)}, {format_age(self.age)} ago (limit {limit})"


def newest_build(warehouse: Warehouse) -> tuple[datetime | None, int]:
    """The newest FinishTime (naive → aware UTC) and the number of builds in the store."""
    frame = warehouse.query(NEWEST_BUILD_QUERY)
    if frame.empty:
        return None, 0
    newest, builds = frame.iloc[0]["Newest"], frame.iloc[0]["Builds"]
    count = 0 if pd.isna(builds) else int(builds)
    if newest is None or pd.isna(newest):
        return None, count
    stamp = pd.Timestamp(newest)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime(), count


def check_freshness(warehouse: Warehouse, max_age: timedelta, now: datetime | None = None) -> Freshness:
    """Compare the newest build's FinishTime with *now* (default: the current UTC time)."""
    newest, builds = newest_build(warehouse)
    return Freshness(newest, builds, max_age, now or datetime.now(UTC))


def outbox_problems(staging_dir: Path, max_age: timedelta, now: datetime, max_attempts: int) -> list[str]:
    """One line per dead batch, stuck pending batch and growing quarantine under *staging_dir*; empty when none."""
    outbox = Outbox(staging_dir)
    naive_now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    lines = []
    for m in outbox.batches(BatchStatus.DEAD):
        lines.append(f"dead batch {m.batch_id} ({m.where} {m.watermark_from} → {m.watermark_to}) after {m.attempts} "
                     f"failed loads: {m.last_error}; fix the cause, then `ci-telemetry outbox retry {m.batch_id}` "
                     f"(or `outbox drop {m.batch_id} --reason ...` to read its window again)")
    for m in outbox.batches(BatchStatus.PENDING):
        staged = datetime.fromisoformat(m.staged_at)
        if m.attempts:
            lines.append(f"pending batch {m.batch_id} ({m.where}) failed {m.attempts} of {max_attempts} load "
                         f"attempts: {m.last_error}")
        elif naive_now - staged > max_age:
            lines.append(f"pending batch {m.batch_id} ({m.where}) staged {format_age(naive_now - staged)} ago has not "
                         f"loaded (limit {format_age(max_age)}); run `ci-telemetry etl`")
    recent = Quarantine(staging_dir).recent(naive_now - max_age)
    if recent:
        shown = ", ".join(recent[:3]) + (f" (+{len(recent) - 3} more)" if len(recent) > 3 else "")
        lines.append(f"quarantine grew by {len(recent)} in the last {format_age(max_age)}: {shown} "
                     f"under {outbox.root.parent / 'quarantine'}")
    return lines
