"""Execute the report notebooks with papermill and render them to self-contained HTML, plus an index.

Each notebook runs in a fresh kernel of this virtual environment's Python with the period and filters as
parameters; the executed `.ipynb` is kept beside its HTML. HTML is produced by nbconvert with the inputs
hidden and with a template that fetches nothing from the network (plotly.js is embedded by the first
chart). `index.html` links the reports and says which period they cover and how fresh the data is.
"""

from __future__ import annotations

import html
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from etl.analysis.data import Period
from etl.config import DEFAULT_CONFIG, PROJECT_ROOT, Settings, load_config
from etl.reports.notebooks import NOTEBOOK_DIR
from etl.warehouse import open_warehouse, run_query_file

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPORTS = {
    "ci_health": ("CI health", "Pass rate, failure kinds (infrastructure vs code), durations, time to green, retries."),
    "flakiness": ("Flaky tests", "Flaky and broken tests ranked by flip rate, their cost, new flaky tests, flaky jobs."),
    "regressions": ("Regressions", "Change points in build time, memory, network and score series; open alerts."),
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


@dataclass
class RenderRun:
    """What `render_reports` did: the index, each report, the period."""

    index: Path
    period: Period
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
            str(notebook_dir / f"{name}.ipynb"), str(executed), parameters=parameters, kernel_name=kernel,
            progress_bar=False, cwd=str(PROJECT_ROOT), log_output=False,
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
    return ReportResult(name, title, target, executed, time.monotonic() - t0)


def _freshness(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    warehouse = open_warehouse(settings, read_only=True)
    try:
        return run_query_file(warehouse, "freshness"), run_query_file(warehouse, "etl_runs")
    finally:
        warehouse.close()


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p class='note'>none recorded</p>"
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M:%S").fillna("—")
    return shown.to_html(index=False, escape=True, na_rep="—", border=0)


def write_index(run: RenderRun, settings: Settings, config_path: Path, started: datetime) -> Path:
    """index.html: links to the reports, the period, data freshness and run details (all text escaped)."""
    esc = html.escape
    fresh, runs = _freshness(settings)
    items = []
    for r in run.results:
        desc = REPORTS.get(r.name, ("", ""))[1]
        if r.html:
            items.append(f"<li><a href='{esc(r.html.name)}'>{esc(r.title)}</a> — {esc(desc)} "
                         f"<span class='note'>({r.seconds:.1f} s; <a href='{esc(r.notebook.name)}'>executed notebook</a>)</span></li>")
        else:
            items.append(f"<li><b>{esc(r.title)}</b>: <span class='bad'>{esc(r.error)}</span></li>")
    newest = fresh["NewestFinishTime"].max() if len(fresh) else None
    newest_text = newest.strftime("%Y-%m-%d %H:%M UTC") if newest is not None and not pd.isna(newest) else "no builds in the store"
    p = run.period
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ci-telemetry reports</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #1f2328; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} th, td {{ border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; }}
th {{ background: #f6f8fa; }} .note {{ color: #57606a; }} .bad {{ color: #cf222e; }} li {{ margin: 6px 0; }}
</style></head>
<body>
<h1>ci-telemetry reports</h1>
<p>Period: <b>{esc(p.start.strftime('%Y-%m-%d %H:%M'))} – {esc(p.end.strftime('%Y-%m-%d %H:%M'))} UTC</b>
({(p.end - p.start).days} days; builds selected by queue time).</p>
<ul id="reports">{''.join(items)}</ul>
<h2>Data freshness</h2>
<p>Newest build finished: <b>{esc(newest_text)}</b>.</p>
{_table(fresh)}
<h3>Last ETL runs</h3>
{_table(runs)}
<h2>Run details</h2>
<table>
<tr><th>generated</th><td>{esc(started.strftime('%Y-%m-%d %H:%M:%S UTC'))}</td></tr>
<tr><th>configuration</th><td>{esc(str(config_path))}</td></tr>
<tr><th>warehouse</th><td>{esc(settings.warehouse.kind)}</td></tr>
<tr><th>python</th><td>{esc(platform.python_version())}</td></tr>
<tr><th>reports</th><td>{sum(1 for r in run.results if r.html)} of {len(run.results)} rendered</td></tr>
</table>
</body></html>
"""
    run.index.write_text(body, encoding="utf-8")
    (run.index.parent / "run.json").write_text(json.dumps({
        "generated": started.isoformat(), "period": [p.start.isoformat(), p.end.isoformat()],
        "reports": [{"name": r.name, "html": r.html.name if r.html else None, "seconds": round(r.seconds, 2), "error": r.error}
                    for r in run.results],
    }, indent=2), encoding="utf-8")
    return run.index


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
    days = days or settings.reports.days
    out = Path(out_dir) if out_dir else settings.path(settings.reports.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).replace(tzinfo=None)
    period = Period.last_days(days, end=end)
    run = RenderRun(index=out / "index.html", period=period)
    # Fail with one line before starting any kernel when the store cannot be read (e.g. no ETL run yet).
    _freshness(settings)
    kernel = kernel_name()
    parameters = {"period_days": days, "start": period.start.isoformat(), "end": period.end.isoformat(),
                  "config_path": str(config_path.resolve())}
    wanted = names or list(REPORTS)
    for i, name in enumerate(wanted, 1):
        if progress:
            progress(f"[{i}/{len(wanted)}] {REPORTS.get(name, (name,))[0]} …")
        result = render_one(name, out, parameters, kernel)
        if progress:
            progress(f"[{i}/{len(wanted)}] {result.title}: " + (f"{result.html} ({result.seconds:.1f} s)" if result.html else result.error))
        run.results.append(result)
    write_index(run, settings, config_path, started)
    return run
