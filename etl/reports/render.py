"""Execute the report notebooks with papermill and render them to self-contained HTML, plus an index.

Each notebook runs in a fresh kernel of this virtual environment's Python with the period and filters as
parameters; the executed `.ipynb` is kept beside its HTML. HTML is produced by nbconvert with the inputs
hidden and with a template that fetches nothing from the network (plotly.js is embedded by the first
chart). `index.html` (a Jinja template, autoescape on) opens with the executive summary the notebooks
published (their summary cards), links the reports, and says which period they cover, why, and how fresh the
data is.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from etl import resources
from etl.analysis.data import Period
from etl.config import DEFAULT_CONFIG, PROJECT_ROOT, Settings, load_config
from etl.reports import nbkit
from etl.reports.notebooks import NOTEBOOK_DIR, read_notebook
from etl.timeutil import utc_now
from etl.warehouse import connected, run_query_file

TEMPLATES = resources.package_folder("etl.reports", "templates")
REPORTS = {
    "ci_health": ("CI health", "Pass rate, failure kinds (infrastructure vs code), durations, time to green, retries."),
    "flakiness": ("Flaky tests", "Flaky and broken tests ranked by flip rate, their cost, new flaky tests, flaky jobs."),
    "regressions": ("Regressions", "Changes in build time, memory, network and score series from the Alerts table; open alerts charted."),
}


class ReportError(RuntimeError):
    """A report could not be produced; the message is one line."""


@dataclass
class ReportResult:
    name: str
    title: str
    html: Path | None
    notebook: Path | None
    seconds: float
    error: str = ""
    cards: list[dict] = field(default_factory=list)


@dataclass
class RenderRun:
    """What `render_reports` did: the index, each report, the period."""

    index: Path
    period: Period
    reason: str = ""
    results: list[ReportResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(not r.error for r in self.results)


def kernel_name() -> str:
    """A kernelspec that starts this interpreter; installs one into the venv (sys.prefix) when none does.

    ipykernel ships `python3` into `<venv>/share/jupyter/kernels` on install; a fresh clone has it, but an
    environment without it (or with a kernel pointing elsewhere) gets `ci-telemetry-python` registered.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    for name in ("python3", "ci-telemetry-python"):
        try:
            spec = ksm.get_kernel_spec(name)
        except NoSuchKernel:
            continue
        exe = spec.argv[0] if spec.argv else ""
        if exe in ("python", "python3", sys.executable) or Path(exe).resolve() == Path(sys.executable).resolve():
            return name
    from ipykernel.kernelspec import install

    install(kernel_name="ci-telemetry-python", display_name="Python (ci-telemetry)", prefix=sys.prefix)
    return "ci-telemetry-python"


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="offline",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )


def render_one(
    name: str, out_dir: Path, parameters: dict, kernel: str, notebook_dir: Path = NOTEBOOK_DIR
) -> ReportResult:
    """Execute `notebooks/<name>.ipynb` into out_dir and render its HTML; errors are caught and returned."""
    import nbformat
    import papermill

    title = REPORTS.get(name, (name, ""))[0]
    executed = out_dir / f"{name}.ipynb"
    target = out_dir / f"{name}.html"
    t0 = time.monotonic()
    try:
        papermill.execute_notebook(
            read_notebook(name, notebook_dir), str(executed), parameters=parameters, kernel_name=kernel,
            progress_bar=False, cwd=str(PROJECT_ROOT), log_output=False,
            # Written once at the end (and, with the failing cell marked, when a cell raises) rather than
            # after every cell: each save re-serializes outputs that embed plotly.js, about half a
            # report's wall time. Only a dead kernel now leaves no partial notebook behind.
            request_save_on_cell_execute=False,
            # the kernel's "running over TCP without encryption" warning is noise on a loopback-only kernel
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except Exception as exc:  # papermill raises its own error types and kernel failures alike
        first = str(exc).strip().splitlines()
        reason = next((line for line in reversed(first) if line.strip()), type(exc).__name__)
        return ReportResult(name, title, None, executed if executed.exists() else None, time.monotonic() - t0,
                            f"{name}.ipynb failed: {reason[:300]}")
    nb = nbformat.read(executed, as_version=4)
    nb.metadata["title"] = title
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    target.write_text(body, encoding="utf-8")
    return ReportResult(name, title, target, executed, time.monotonic() - t0, cards=published_cards(nb))


def published_cards(nb) -> list[dict]:
    """The summary cards an executed notebook published (nbkit.show(..., summary=...)), in order."""
    return [card for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
            for card in output.get("data", {}).get(nbkit.SUMMARY_MIME, [])]


def _freshness(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    with connected(settings, read_only=True) as warehouse:
        return run_query_file(warehouse, "freshness"), run_query_file(warehouse, "etl_runs")


def _rows(frame: pd.DataFrame) -> dict:
    """Columns and text cells of a small table for the index template."""
    return {"columns": list(frame.columns),
            "rows": [[nbkit.fmt_cell(v) for v in values] for values in frame.itertuples(index=False, name=None)]}


# The executive summary on index.html: which published cards, in this order.
SUMMARY_CARDS = [
    ("ci_health", "pass_rate"), ("ci_health", "pr_first_attempt_pass_rate"), ("ci_health", "p90_duration_minutes"),
    ("ci_health", "median_time_to_green_hours"), ("ci_health", "retry_minutes_wasted"),
    ("flakiness", "new_flaky_tests"), ("regressions", "open_regressions"),
]


def executive_summary(results: list[ReportResult]) -> list[dict]:
    """The index's cards, each linking to the section of its report that explains it."""
    by_key = {(r.name, c["key"]): (r, c) for r in results if r.html for c in r.cards}
    out = []
    for key in SUMMARY_CARDS:
        if key in by_key:
            r, card = by_key[key]
            out.append({**card, "href": f"{r.html.name}#{card['section']}" if card["section"] else r.html.name})
    return out


def write_index(run: RenderRun, settings: Settings, config_path: Path, started: datetime) -> Path:
    """index.html: the executive summary, links to the reports, the period and why, data freshness and run
    details (templates/parts/index.html.j2; every value escaped)."""
    fresh, runs = _freshness(settings)
    newest = fresh["NewestFinishTime"].max() if len(fresh) else None
    newest_text = newest.strftime("%Y-%m-%d %H:%M UTC") if newest is not None and not pd.isna(newest) else "no builds in the store"
    reports = [{"title": r.title, "description": REPORTS.get(r.name, ("", ""))[1], "html": r.html.name if r.html else "",
                "notebook": r.notebook.name if r.notebook else "", "seconds": f"{r.seconds:.1f}", "error": r.error}
               for r in run.results]
    body = nbkit.render(
        "index.html.j2", period=nbkit.period_facts(run.period, run.reason), summary=executive_summary(run.results),
        reports=reports, newest=newest_text, freshness=_rows(fresh), runs=_rows(runs),
        details=[("generated", started.strftime("%Y-%m-%d %H:%M:%S UTC")), ("configuration", str(config_path)),
                 ("warehouse", settings.warehouse.kind), ("python", platform.python_version()),
                 ("reports", f"{sum(1 for r in run.results if r.html)} of {len(run.results)} rendered")],
    )
    run.index.write_text(body, encoding="utf-8")
    p = run.period
    (run.index.parent / "run.json").write_text(json.dumps({
        "generated": started.isoformat(), "period": [p.start.isoformat(), p.end.isoformat()], "period_reason": run.reason,
        "reports": [{"name": r.name, "html": r.html.name if r.html else None, "seconds": round(r.seconds, 2), "error": r.error}
                    for r in run.results],
    }, indent=2), encoding="utf-8")
    return run.index


def period_reason(days: int | None, settings: Settings, config_path: Path) -> str:
    """Why the report covers the days it does: the command line's --days, else the config's reports.days."""
    if days:
        return f"--days {days} on the command line"
    return f"reports.days = {settings.reports.days} in {config_path.name}"


def render_reports(
    config_path: Path | str | None = None,
    days: int | None = None,
    out_dir: Path | None = None,
    end: datetime | None = None,
    names: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RenderRun:
    """Execute and render every report (or *names*) for the last *days* days; writes out_dir/index.html."""
    config_path = Path(config_path) if config_path else DEFAULT_CONFIG
    settings = load_config(config_path)
    reason = period_reason(days, settings, config_path)
    days = days or settings.reports.days
    out = Path(out_dir) if out_dir else settings.path(settings.reports.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = utc_now()
    period = Period.last_days(days, end=end)
    run = RenderRun(index=out / "index.html", period=period, reason=reason)
    # Fail with one line before starting any kernel when the store cannot be read (e.g. no ETL run yet).
    _freshness(settings)
    kernel = kernel_name()
    parameters = {"period_days": days, "start": period.start.isoformat(), "end": period.end.isoformat(),
                  "config_path": str(config_path.resolve()), "period_reason": reason}
    wanted = names or list(REPORTS)
    if progress:
        facts = nbkit.period_facts(period, reason)
        progress(f"period: {facts['start']} – {facts['end']} UTC ({facts['days']} days; {reason})")
    for i, name in enumerate(wanted, 1):
        if progress:
            progress(f"[{i}/{len(wanted)}] {REPORTS.get(name, (name,))[0]} …")
        result = render_one(name, out, parameters, kernel)
        if progress:
            progress(f"[{i}/{len(wanted)}] {result.title}: " + (f"{result.html} ({result.seconds:.1f} s)" if result.html else result.error))
        run.results.append(result)
    write_index(run, settings, config_path, started)
    return run
