"""Reading rendered reports the way a reader does: card values, table rows, charts, links (for the tests)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

CARD = re.compile(r'data-card="(?P<key>[^"]+)"[^>]*>(?:<div class="(?:ct-)?label">(?P<label>.*?)</div>)'
                  r'<div class="(?:ct-)?value">(?P<value>.*?)</div>', re.S)


def page(out: Path, name: str) -> str:
    return (out / f"{name}.html").read_text(encoding="utf-8")


def cards(text: str) -> dict[str, str]:
    """data-card key → the card's value, as shown."""
    return {m["key"]: unescape(m["value"]) for m in CARD.finditer(text)}


def table_rows(text: str, table_id: str) -> list[list[str]]:
    """Body rows of <table id=table_id> as text cells; [] when the page says there is no such table."""
    m = re.search(rf'<table class="ct-table" id="{re.escape(table_id)}">(.*?)</table>', text, re.S)
    if not m:
        return []
    body = m.group(1).split("<tbody>", 1)[1]
    return [[unescape(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def row_ids(text: str, table_id: str) -> list[str]:
    """The data-row marks of a table's rows (the AlertId of each alert row)."""
    m = re.search(rf'<table class="ct-table" id="{re.escape(table_id)}">(.*?)</table>', text, re.S)
    return re.findall(r'<tr data-row="([^"]+)"', m.group(1)) if m else []


def charted_alerts(text: str) -> list[str]:
    """AlertIds of the chart boxes that hold a drawn plotly chart."""
    boxes = re.split(r'(?=<div class="ct-chart")', text)
    return [m.group(1) for box in boxes if (m := re.match(r'<div class="ct-chart" data-alert-id="([^"]+)"', box))
            and "plotly-graph-div" in box.split('<div class="ct-chart"', 2)[1]]


def index_links(text: str) -> list[str]:
    """The hrefs of the executive summary's cards."""
    return re.findall(r'<a class="card" data-card="[^"]+" href="([^"]+)"', text)


def anchors(text: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', text))
