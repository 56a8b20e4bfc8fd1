"""`ci-telemetry simulator serve`: serve the simulated Azure DevOps organization until Ctrl-C."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings

simulator_app = typer.Typer(help="The simulated Azure DevOps organization (what the demo, tests and benchmarks use).",
                            no_args_is_help=True)


def _parse_end(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--end {value!r}: expected an ISO date such as 2026-11-23 or 2026-11-23T00:00:00Z")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@simulator_app.command("serve")
def serve(
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Seed (default: the config's simulator source, else 7).")] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    days: Annotated[int | None, typer.Option("--days", help="Days of builds (default: the config's, else 28).")] = None,
    builds_per_day: Annotated[int | None, typer.Option("--builds-per-day", help="Completed builds per day.")] = None,
    ground_truth: Annotated[Path | None, typer.Option("--ground-truth", help="Write the ground truth JSON here.")] = None,
    fault_rate: Annotated[float, typer.Option("--fault-rate", help="Probability of a 429/500/503 per request.")] = 0.0,
    records_per_job: Annotated[int, typer.Option("--records-per-job", help="Extra steps per job (big timelines).")] = 0,
    results_cap: Annotated[int | None, typer.Option("--results-cap", min=1,
                                                    help="Serve at most N test results per page (below 200/1000).")] = None,
    rate_limit: Annotated[int, typer.Option("--rate-limit", min=0,
                                            help="Requests per 5 minutes before X-RateLimit delays (0: none).")] = 0,
    end: Annotated[str | None, typer.Option("--end", help="End of the window (default: today 00:00 UTC).")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="SIMULATOR_TOKEN", help="Require this PAT/Bearer token.")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Serve a deterministic simulated organization with the Azure DevOps REST layout on 127.0.0.1.

    Example: ci-telemetry simulator serve --seed 7 --port 8081 --ground-truth data/ground-truth.json
    """
    from etl.simulator import Faults, start_server

    settings = load_settings(config)
    source = next((s for s in settings.sources if s.kind == "simulator"), None)
    seed = seed if seed is not None else (source.seed if source else 7)
    days = days if days is not None else (source.days if source else 28)
    builds_per_day = builds_per_day if builds_per_day is not None else (source.builds_per_day if source else 12)
    if days < 1 or builds_per_day < 1:
        fail("--days and --builds-per-day must be at least 1")
    if not 0 <= fault_rate <= 1:
        fail(f"--fault-rate {fault_rate}: expected a probability between 0 and 1")
    faults = (Faults(rate=fault_rate, seed=seed, results_cap=results_cap, rate_limit=rate_limit)
              if fault_rate or results_cap or rate_limit else None)
    try:
        server = start_server(seed=seed, days=days, builds_per_day=builds_per_day, faults=faults,
                              end=_parse_end(end), token=token, port=port, records_per_job=records_per_job)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    with server:
        truth = server.ground_truth
        if ground_truth is not None:
            ground_truth.parent.mkdir(parents=True, exist_ok=True)
            ground_truth.write_text(json.dumps(truth, indent=2), encoding="utf-8")
            typer.echo(f"ground truth: {ground_truth}")
        typer.echo(f"organization: {server.url}")
        typer.echo(f"projects: {', '.join(server.projects)}")
        counts = truth["expected_counts"]
        typer.echo(f"builds: {counts['TimelineBuilds']}, timeline records: {counts['TimelineRecords']}, "
                   f"test results: {counts['TestResults']} (seed {seed}, {days} days)")
        typer.echo("serving; press Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            typer.echo("stopped")


def register(app: typer.Typer) -> None:
    app.add_typer(simulator_app, name="simulator")
