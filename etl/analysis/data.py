"""Reading the report queries for a period, with the same filters every notebook takes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pandas as pd

from etl.timeutil import utc_now
from etl.warehouse.base import Warehouse, run_query_file


@dataclass(frozen=True)
class Period:
    """[start, end) plus the filters of `declare query_parameters` ("" means all)."""

    start: datetime
    end: datetime
    organization: str = ""
    project: str = ""
    branch: str = ""
    definition: str = ""

    @classmethod
    def last_days(cls, days: int, end: datetime | None = None, **filters: str) -> Period:
        """The *days* days ending at *end* (default: the next midnight UTC, so today is included)."""
        if end is None:
            now = utc_now()
            end = datetime(now.year, now.month, now.day) + timedelta(days=1)
        return cls(end - timedelta(days=days), end, **filters)

    def previous(self) -> Period:
        """The period of the same length just before this one (for "change since last period")."""
        return replace(self, start=self.start - (self.end - self.start), end=self.start)

    def params(self) -> dict[str, object]:
        return {
            "start": self.start, "end": self.end, "organization": self.organization,
            "projectName": self.project, "branch": self.branch, "definition": self.definition,
        }


def load(warehouse: Warehouse, query: str, period: Period, **extra: object) -> pd.DataFrame:
    """Run `kql/queries/<query>.kql` for *period* (and *extra* parameters)."""
    return run_query_file(warehouse, query, {**period.params(), **extra})
