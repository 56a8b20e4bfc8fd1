"""What the report notebooks share: their context (settings, store, period and why that period), tables,
offline plotly charts, summary cards and the glossary — all rendered by Jinja templates with autoescape on.

Test names, messages and branch names come from CI logs and may hold markup: every value reaches the page
through a template, which escapes it. Only plotly's own chart markup is inserted as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from etl.analysis.data import Period, load
from etl.config import Settings, load_config
from etl.warehouse import Warehouse, open_warehouse

PARTS = Path(__file__).resolve().parent / "templates" / "parts"
# The mimetype under which a notebook publishes its summary cards; render.py reads it for index.html.
SUMMARY_MIME = "application/vnd.ci-telemetry.summary+json"
NO_DATA = "No data for this period."

_PLOTLY_EMBEDDED = False


@cache
def templates() -> Environment:
    """The Jinja environment of the report fragments (autoescape on; a missing variable is an error)."""
    return Environment(loader=FileSystemLoader(PARTS), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=False, keep_trailing_newline=False)


def render(template: str, **values: Any) -> str:
    """Render `templates/parts/<template>` with *values* (escaped)."""
    return templates().get_template(template).render(**values)


def _parse_time(text: str) -> datetime | None:
    return pd.Timestamp(text).tz_localize(None).to_pydatetime() if text else None


@dataclass
class ReportContext:
    """Settings, an open (read-only) store, the period the notebook reports on and why that period."""

    settings: Settings
    warehouse: Warehouse
    period: Period
    definitions: list[str] = field(default_factory=list)
    reason: str = ""

    def load(self, query: str, previous: bool = False, **extra: object) -> pd.DataFrame:
        """Rows of `kql/queries/<query>.kql` for the period (or the previous one), filtered to *definitions*."""
        frame = load(self.warehouse, query, self.period.previous() if previous else self.period, **extra)
        if self.definitions and "Definition" in frame.columns:
            frame = frame[frame["Definition"].isin(self.definitions)].reset_index(drop=True)
        return frame

    def close(self) -> None:
        self.warehouse.close()


def context(
    config_path: str,
    period_days: int,
    start: str = "",
    end: str = "",
    organization: str = "",
    project: str = "",
    definitions: Sequence[str] | str = (),
    branch: str = "",
    period_reason: str = "",
) -> ReportContext:
    """The notebook's context from its parameters (start/end ISO text override period_days)."""
    settings = load_config(config_path or None)
    defs = [d for d in ([definitions] if isinstance(definitions, str) else list(definitions)) if d]
    end_dt = _parse_time(end)
    period = Period.last_days(period_days, end=end_dt, organization=organization, project=project, branch=branch,
                              definition=defs[0] if len(defs) == 1 else "")
    if start:
        period = Period(_parse_time(start), period.end, organization, project, branch, period.definition)  # type: ignore[arg-type]
    reason = period_reason or f"period_days = {period_days} (notebook parameter)"
    return ReportContext(settings, open_warehouse(settings, read_only=True), period, defs, reason)


def show(markup: str, summary: Sequence[Card] = ()) -> None:
    """Display HTML built by the helpers here as the cell's output; *summary* cards are also published as JSON
    (SUMMARY_MIME) for index.html's executive summary."""
    from IPython.display import display

    bundle: dict[str, Any] = {"text/html": str(markup)}
    if summary:
        bundle[SUMMARY_MIME] = [asdict(c) for c in summary]
    display(bundle, raw=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def fmt_pct(value: float, digits: int = 1) -> str:
    return "—" if _missing(value) else f"{value * 100:.{digits}f}%"


def fmt_num(value: float, digits: int = 1) -> str:
    return "—" if _missing(value) else f"{value:,.{digits}f}"


def fmt_change(value: float) -> str:
    """A signed percentage: +12.3%."""
    return "—" if _missing(value) else f"{value:+.1f}%"


def fmt_cell(value: Any) -> str:
    """Default text of a table cell: dates to the minute, floats to 2 decimals, missing as —."""
    if isinstance(value, (pd.Timestamp, datetime)):
        return "—" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return fmt_num(value, 2)
    if _missing(value) or (not isinstance(value, (list, dict, str)) and pd.isna(value)):
        return "—"
    return str(value)


# Column names as a reader without the glossary says them; tables show these instead of the field names.
LABELS = {
    "n": "Builds (n)", "pass_rate": "Pass rate", "succeeded": "Succeeded", "failed": "Failed",
    "partially_succeeded": "Partially succeeded", "canceled": "Canceled",
    "n_this_week": "Builds this week", "pass_rate_this_week": "Pass rate this week",
    "n_last_week": "Builds last week", "pass_rate_last_week": "Pass rate last week",
    "change_points": "Change (percentage points)",
    "p50_minutes": "Median (min)", "p90_minutes": "p90 (min)", "p95_minutes": "p95 (min)",
    "FailureOrigin": "Origin", "FailureCategory": "Category", "Share": "Share of errors",
    "FirstRed": "First red", "FirstRedBuild": "First red build", "GreenBuild": "Green again at build",
    "Green": "Green again", "RedBuilds": "Red builds", "Hours": "Hours red", "SourceBranch": "Branch",
    "TestName": "Test", "FlipRate": "Flip rate", "FlakyCommits": "Commits with a flip", "Commits": "Commits run",
    "PassedOnRerun": "Passed on rerun", "FailedBuilds": "Failed builds", "FailedPRs": "Failed PRs",
    "MachineMinutes": "Machine minutes", "FirstSeen": "First seen", "LastSeen": "Last seen", "FailRate": "Fail rate",
    "FlakyBuilds": "Builds with a flaky retry", "Rate": "Rate", "BrokenSince": "Failing since",
    "FailingCommits": "Failing commits in a row",
    "BuildBefore": "Last build before", "BuildAfter": "First build after", "CommitBefore": "Commit before",
    "CommitAfter": "Commit after", "ChangePercent": "Change", "ChangeAt": "Changed at", "Before": "Before (median)",
    "After": "After (median)", "AlertId": "Alert id", "DetectedAt": "Detected at", "Direction": "Kind of change",
    "Status": "Status", "Technique": "Detector",
}


def table(
    frame: pd.DataFrame | None,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    max_rows: int = 25,
    caption: str = "",
    table_id: str = "",
    row_id: str = "",
) -> str:
    """An HTML table (every cell escaped), columns named by LABELS; *formats* turn values into text per column.
    "No data for this period." when *frame* is empty; says when rows were cut. *row_id* names a column whose
    value marks each row (data-row), so tests and readers can match rows to charts."""
    if frame is None or frame.empty:
        return render("table.html.j2", caption=caption, rows=[], columns=[], total=0, table_id=table_id, row_ids=[])
    shown = frame.head(max_rows)
    formats = formats or {}
    rows = [[formats[c](v) if c in formats else fmt_cell(v) for c, v in zip(shown.columns, values, strict=True)]
            for values in shown.itertuples(index=False, name=None)]
    return render("table.html.j2", caption=caption, rows=rows, columns=[LABELS.get(c, c) for c in shown.columns],
                  total=len(frame), table_id=table_id, row_ids=[str(v) for v in shown[row_id]] if row_id else [])


def note(text: str, empty: bool = False) -> str:
    """One escaped paragraph in the muted style."""
    return render("note.html.j2", text=text, empty=empty)


def sentence(*parts: Any) -> str:
    """A paragraph from alternating plain and bold parts: sentence("Median: ", "4.0 h", " over 3 streaks.")."""
    return render("sentence.html.j2", parts=[str(p) for p in parts])


def has_data(fig: Any) -> bool:
    """Whether any trace of a plotly figure has a point to draw."""
    for trace in fig.data:
        for axis in ("x", "y"):
            values = getattr(trace, axis, None)
            if values is not None and len(values):
                return True
    return False


def figure(fig: Any, height: int = 380, title: str = "", **attrs: Any) -> str:
    """A plotly figure as HTML, or "No data for this period." instead of empty axes. The first chart of the
    report embeds plotly.js itself (offline, no CDN). *attrs* become data-* attributes of the chart's box."""
    global _PLOTLY_EMBEDDED
    markup = ""
    if has_data(fig):
        import plotly.io as pio

        fig.update_layout(height=height, margin={"l": 50, "r": 20, "t": 50, "b": 40}, template="plotly_white")
        # plotly writes the figure as JSON inside <script>, with <, > and / escaped as \u003c… (see its _html).
        markup = Markup(pio.to_html(fig, full_html=False, include_plotlyjs=not _PLOTLY_EMBEDDED,
                                    config={"displaylogo": False}))
        _PLOTLY_EMBEDDED = True
    return render("chart.html.j2", markup=markup, title=title if not markup else "",
                  attrs=sorted((k.replace("_", "-"), str(v)) for k, v in attrs.items()))


@dataclass(frozen=True)
class Card:
    """One summary figure: label, value, its change since the previous period and the tone of that change
    (good, bad, flat); *section* is the anchor of the part of the page that explains it."""

    key: str
    label: str
    value: str
    change: str = ""
    tone: str = "flat"
    section: str = ""


def cards(items: Iterable[Card]) -> str:
    """Summary cards."""
    return render("cards.html.j2", cards=list(items))


def delta(current: float, previous: float, higher_is_better: bool, unit: str = "", scale: float = 1.0,
          digits: int = 1) -> tuple[str, str]:
    """("+1.2 pts since last period", tone) for a card; "no previous period" when either value is unknown."""
    if _missing(current) or _missing(previous):
        return "no previous period", "flat"
    d = (current - previous) * scale
    if abs(d) < 1e-9:
        return f"±0{unit} since last period", "flat"
    good = (d > 0) == higher_is_better
    return f"{d:+,.{digits}f}{unit} since last period", "good" if good else "bad"


def period_facts(period: Period, reason: str, definitions: Sequence[str] = ()) -> dict[str, Any]:
    """The values the period line shows (also used by index.html)."""
    filters = [f"{k}={v}" for k, v in (("organization", period.organization), ("project", period.project),
                                        ("branch", period.branch)) if v]
    if definitions:
        filters.append("definitions=" + ", ".join(definitions))
    span = period.end - period.start
    days = span.days if not span.seconds else round(span.total_seconds() / 86400, 1)
    return {"start": period.start.strftime("%Y-%m-%d %H:%M"), "end": period.end.strftime("%Y-%m-%d %H:%M"),
            "days": days, "reason": reason, "previous_start": period.previous().start.strftime("%Y-%m-%d %H:%M"),
            "filters": "; ".join(filters)}


def period_line(ctx: ReportContext) -> str:
    """The period actually used, why that one, the previous period changes compare with, and the filters."""
    return render("period.html.j2", **period_facts(ctx.period, ctx.reason, ctx.definitions))


def glossary(entries: Mapping[str, str]) -> str:
    """The formulas, as a two-column table (term, definition)."""
    return render("glossary.html.j2", entries=list(entries.items()))


def config_path_of(path: str) -> Path:
    """The config file a notebook was given, as a path (the default config when empty)."""
    from etl.config import DEFAULT_CONFIG

    return Path(path) if path else DEFAULT_CONFIG
