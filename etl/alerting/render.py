"""The text of a tracker item: title, and a body in Markdown (GitHub) or HTML (Azure DevOps).

Every value comes from CI data, so HTML is escaped, Markdown table cells have `|` escaped, and any secret
value resolved in this run is masked before the text leaves the process.
"""

from __future__ import annotations

import html

from etl.alerting.config import Notify
from etl.alerting.summaries import Summary
from etl.secret_refs import mask

MARKER = "ci-telemetry alert summary"


def _pct(value: object) -> str:
    try:
        return f"{float(value):+.1f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _num(value: object) -> str:
    try:
        return f"{float(value):.4g}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def title(summary: Summary) -> str:
    """One line: what changed, where, and the build range."""
    _, project, definition, metric = summary.key
    if summary.alerts and all(a.get("Kind") == "flaky" for a in summary.alerts):
        test = summary.alerts[0]
        return mask(f"Flaky test {test.get('Series')} in {project}/{definition} "
                    f"(flip rate {float(test.get('After') or 0):.1%})")
    worst = max(summary.alerts, key=lambda a: abs(float(a.get("ChangePercent") or 0)), default={})
    kinds = sorted({str(a.get("Kind") or "") for a in summary.alerts})
    what = "regression" if "regression" in kinds else (kinds[0] if kinds else "change")
    return mask(f"{_pct(worst.get('ChangePercent'))} {metric} {what} in {project}/{definition} "
                f"(builds {summary.build_first}..{summary.build_last})")


def links(summary: Summary, notify: Notify) -> tuple[str, str]:
    """(compare link, report link) for the summary, empty where not configured."""
    first = min(summary.alerts, key=lambda a: int(a.get("BuildBefore") or 0), default={})
    last = max(summary.alerts, key=lambda a: int(a.get("BuildAfter") or 0), default={})
    before, after = str(first.get("CommitBefore") or ""), str(last.get("CommitAfter") or "")
    compare = notify.compare_url.format(before=before, after=after) if notify.compare_url and before and after else ""
    alert_id = str(first.get("AlertId") or "")
    report = notify.report_url.format(metric=summary.key[3], alert_id=alert_id, summary_id=summary.summary_id) if notify.report_url else ""
    return compare, report


def _commit_range(summary: Summary) -> str:
    first = min(summary.alerts, key=lambda a: int(a.get("BuildBefore") or 0), default={})
    last = max(summary.alerts, key=lambda a: int(a.get("BuildAfter") or 0), default={})
    return f"{str(first.get('CommitBefore') or '?')[:12]}..{str(last.get('CommitAfter') or '?')[:12]}"


def _rows(summary: Summary) -> list[list[str]]:
    return [
        [str(a.get("Kind") or ""), str(a.get("Series") or ""), _num(a.get("Before")), _num(a.get("After")),
         _pct(a.get("ChangePercent")), f"{a.get('BuildBefore')}..{a.get('BuildAfter')}", str(a.get("AlertId") or "")]
        for a in sorted(summary.alerts, key=lambda a: -abs(float(a.get("ChangePercent") or 0)))
    ]


_HEAD = ["Kind", "Series", "Before", "After", "Change", "Builds", "Alert"]


def body_markdown(summary: Summary, notify: Notify) -> str:
    """The GitHub issue body."""
    organization, project, definition, metric = summary.key
    compare, report = links(summary, notify)

    def cell(text: str) -> str:
        # CI names are text, not Markdown: no table breaks, escapes, raw HTML or stray code spans.
        for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), ("`", "'"), ("\n", " ")):
            text = text.replace(raw, safe)
        return text

    lines = [
        f"**Metric:** `{cell(metric)}` in {cell(organization)}/{cell(project)}, definition {cell(definition)}",
        f"**Build range:** {summary.build_first}..{summary.build_last}",
        f"**Commit range:** {cell(_commit_range(summary))}" + (f" ([compare]({compare}))" if compare else ""),
    ]
    if report:
        lines.append(f"**Report:** [{cell(metric)} in the regressions report]({report})")
    lines += ["", "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in _rows(summary)]
    lines += ["", f"<!-- {MARKER} {summary.summary_id} -->"]
    return mask("\n".join(lines))


def body_html(summary: Summary, notify: Notify) -> str:
    """The Azure DevOps work item description (HTML)."""
    organization, project, definition, metric = summary.key
    compare, report = links(summary, notify)
    e = html.escape
    parts = [
        f"<p><b>Metric:</b> <code>{e(metric)}</code> in {e(organization)}/{e(project)}, definition {e(definition)}</p>",
        f"<p><b>Build range:</b> {summary.build_first}..{summary.build_last}</p>",
        f"<p><b>Commit range:</b> {e(_commit_range(summary))}"
        + (f' (<a href="{e(compare, quote=True)}">compare</a>)' if compare else "") + "</p>",
    ]
    if report:
        parts.append(f'<p><b>Report:</b> <a href="{e(report, quote=True)}">{e(metric)} in the regressions report</a></p>')
    parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in _HEAD) + "</tr>")
    parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in _rows(summary)]
    parts.append(f"</table><p><small>{MARKER} {summary.summary_id}</small></p>")
    return mask("".join(parts))


def nudge_text(days: int, html_format: bool) -> str:
    """The comment left on a summary untouched for *days* days."""
    text = (f"This alert summary has had no activity for {days} days. Please triage it: fix the change, "
            "or close it as won't fix, invalid (not a real change) or works-for-me.")
    return f"<p>{html.escape(text)}</p>" if html_format else text
