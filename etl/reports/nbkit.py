"""What the report notebooks share: their context (settings, store, period), escaped HTML tables, offline
plotly charts, summary cards and the glossary.

Every string that reaches the page goes through `html.escape` or `DataFrame.to_html(escape=True)`: test
names, messages and branch names come from CI logs and may hold markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from etl.analysis.data import Period, load
from etl.config import Settings, load_config
from etl.warehouse import Warehouse, open_warehouse

_PLOTLY_EMBEDDED = False


def esc(text: Any) -> str:
    """HTML-escaped text (None → empty)."""
    return html.escape("" if text is None else str(text), quote=True)


def _parse_time(text: str) -> datetime | None:
    return pd.Timestamp(text).tz_localize(None).to_pydatetime() if text else None


@dataclass
class ReportContext:
    """Settings, an open (read-only) store and the period the notebook reports on."""

    settings: Settings
    warehouse: Warehouse
    period: Period
    definitions: list[str] = field(default_factory=list)

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
) -> ReportContext:
    """The notebook's context from its parameters (start/end ISO text override period_days)."""
    settings = load_config(config_path or None)
    defs = [d for d in ([definitions] if isinstance(definitions, str) else list(definitions)) if d]
    end_dt = _parse_time(end)
    period = Period.last_days(period_days, end=end_dt, organization=organization, project=project, branch=branch,
                              definition=defs[0] if len(defs) == 1 else "")
    if start:
        period = Period(_parse_time(start), period.end, organization, project, branch, period.definition)  # type: ignore[arg-type]
    return ReportContext(settings, open_warehouse(settings, read_only=True), period, defs)


def show(markup: str) -> None:
    """Display raw HTML (already escaped by the helpers here) as the cell's output."""
    from IPython.display import HTML, display

    display(HTML(markup))


def fmt_pct(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value * 100:.{digits}f}%"


def fmt_num(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    max_rows: int = 25,
    caption: str = "",
) -> str:
    """An HTML table, every cell escaped; *formats* turn numbers into text per column. Says when rows were cut."""
    if frame is None or frame.empty:
        return f"<p class='ct-note'>{esc(caption + ': ' if caption else '')}no rows in this period.</p>"
    shown = frame.head(max_rows).copy()
    for column, fn in (formats or {}).items():
        if column in shown.columns:
            shown[column] = shown[column].map(fn)
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M").fillna("—")
        elif pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: fmt_num(v, 2))
    body = shown.to_html(index=False, escape=True, na_rep="—", classes="ct-table", border=0)
    more = f"<p class='ct-note'>showing {max_rows} of {len(frame)} rows</p>" if len(frame) > max_rows else ""
    head = f"<p><b>{esc(caption)}</b></p>" if caption else ""
    return head + body + more


def figure(fig: Any, height: int = 380) -> str:
    """A plotly figure as HTML; the first one of the report embeds plotly.js itself (offline, no CDN)."""
    global _PLOTLY_EMBEDDED
    import plotly.io as pio

    fig.update_layout(height=height, margin={"l": 50, "r": 20, "t": 50, "b": 40}, template="plotly_white")
    out = pio.to_html(fig, full_html=False, include_plotlyjs=not _PLOTLY_EMBEDDED, config={"displaylogo": False})
    _PLOTLY_EMBEDDED = True
    return out


def cards(items: Iterable[tuple[str, str, str, str]]) -> str:
    """Summary cards: (label, value, change text, tone good|bad|flat)."""
    parts = [
        f"<div class='ct-card'><div class='ct-label'>{esc(label)}</div><div class='ct-value'>{esc(value)}</div>"
        f"<div class='ct-{esc(tone)}'>{esc(change)}</div></div>"
        for label, value, change, tone in items
    ]
    return "<div class='ct-cards'>" + "".join(parts) + "</div>"


def delta(current: float, previous: float, higher_is_better: bool, unit: str = "", scale: float = 1.0) -> tuple[str, str]:
    """("+1.2 pts since last period", tone) for a card."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (current, previous)):
        return "no previous period", "flat"
    d = (current - previous) * scale
    if abs(d) < 1e-9:
        return f"±0{unit} since last period", "flat"
    good = (d > 0) == higher_is_better
    return f"{d:+,.1f}{unit} since last period", "good" if good else "bad"


def period_line(ctx: ReportContext) -> str:
    """One escaped line naming the period and the filters."""
    p = ctx.period
    filters = [f"{k}={v}" for k, v in (("organization", p.organization), ("project", p.project), ("branch", p.branch)) if v]
    if ctx.definitions:
        filters.append("definitions=" + ", ".join(ctx.definitions))
    return (f"<p class='ct-note'>Period {esc(p.start.strftime('%Y-%m-%d %H:%M'))} – {esc(p.end.strftime('%Y-%m-%d %H:%M'))} UTC"
            f" (previous period for changes: {esc(p.previous().start.strftime('%Y-%m-%d'))} – {esc(p.start.strftime('%Y-%m-%d'))})"
            + (f"; filters: {esc('; '.join(filters))}" if filters else "") + "</p>")


def glossary(entries: Mapping[str, str]) -> str:
    """The formulas, as a two-column table (term, definition)."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in entries.items())
    return f"<table class='ct-table ct-glossary'><tbody>{rows}</tbody></table>"


def config_path_of(path: str) -> Path:
    """The config file a notebook was given, as a path (the default config when empty)."""
    from etl.config import DEFAULT_CONFIG

    return Path(path) if path else DEFAULT_CONFIG
