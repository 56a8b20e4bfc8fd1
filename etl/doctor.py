"""`ci-telemetry doctor`: check every precondition of a scheduled run, one line per check.

Checks, in order: the configuration is valid; every secret reference resolves (values are never
printed); every source is reachable with sufficient permissions; the warehouse is reachable; its
tables match `kql/tables` (schema drift); the last ETL run succeeded; the data is fresh; the outbox
holds no dead or stuck batch and the quarantine is not growing. A later
check that depends on an earlier failed one is skipped rather than reported as a second failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel

from etl.config import AzureDevOpsSource, ConfigError, InboxSource, Settings, SimulatorSource, load_config
from etl.freshness import check_freshness, format_age, outbox_problems
from etl.load import RunStatus
from etl.schema import TableSchema, load_tables
from etl.secret_refs import SecretError, SecretRef, mask
from etl.sources.azure_devops.client import (
    AdoClient,
    AuthError,
    NotFound,
    RetryPolicy,
    SourceError,
    client_for_source,
    entra_token_provider,
)
from etl.sources.jenkins.config import JenkinsSimulatorSource, JenkinsSource
from etl.warehouse import open_warehouse
from etl.warehouse.base import Warehouse, WarehouseError

Status = Literal["ok", "warn", "FAIL"]

#: The doctor answers quickly: one try per endpoint, a short timeout.
HTTP_TIMEOUT_SECONDS = 15
#: Kusto types that the store reports under another name of the same type.
_SAME_TYPE = {"double": "real", "decimal": "real", "guid": "string", "int32": "int", "int64": "long",
              "boolean": "bool", "system.string": "string"}
_OK_RUN_STATES = {RunStatus.LOADED, RunStatus.NO_NEW_DATA, "succeeded", "ok"}
#: Anything else (failed, retrying, dead) fails the check.
_WARN_RUN_STATES = {RunStatus.HELD, RunStatus.DRY_RUN, RunStatus.INCOMPLETE, RunStatus.DROPPED, "pending"}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's output."""

    status: Status
    name: str
    detail: str

    def line(self) -> str:
        return mask(f"{self.status:<5}{self.name:<10}{self.detail}")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def secret_refs(model: Any, where: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Every SecretRef in the settings, with the dotted setting it sits at."""
    if isinstance(model, SecretRef):
        yield where, model
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            yield from secret_refs(getattr(model, name), f"{where}.{name}" if where else name)
    elif isinstance(model, list | tuple):
        for index, item in enumerate(model):
            yield from secret_refs(item, f"{where}[{index}]")
    elif isinstance(model, dict):
        for key, item in model.items():
            yield from secret_refs(item, f"{where}.{key}")


def check_secrets(settings: Settings) -> tuple[list[Check], set[str]]:
    """One line per unresolvable reference (or one ok line); also the references that failed."""
    checks, failed = [], set()
    refs = list(secret_refs(settings))
    for where, ref in refs:
        try:
            ref.reveal()
        except SecretError as exc:
            checks.append(Check("FAIL", "secrets", f"{where}: {exc}"))
            failed.add(ref.reference)
    if not refs:
        checks.append(Check("ok", "secrets", "no secret references configured"))
    elif not failed:
        names = ", ".join(ref.reference for _, ref in refs)
        checks.append(Check("ok", "secrets", f"{len(refs)} reference(s) resolve: {names}"))
    return checks, failed


_SCOPE_HINT = {
    "connectionData": "the token is missing, expired or not valid for this organization",
    "builds": "the token lacks the Build (read) scope",
    "test runs": "the token lacks the Test Management (read) scope",
}
#: The doctor answers quickly: one try per endpoint, a short timeout.
PROBE_POLICY = RetryPolicy(max_retries=0, timeout_seconds=HTTP_TIMEOUT_SECONDS, max_total_wait_seconds=0)


def probe_organization(name: str, client: AdoClient, projects: list[str], test_results: bool) -> list[Check]:
    """GET connectionData, then one builds (and test runs) page per project through *client*.

    The same client as the ETL, so the same headers, API version and auth; a refusal names the scope.
    """
    probes = [("connectionData", client.url(None, "_apis/connectionData"))]
    for project in projects:
        probes.append(("builds", client.url(project, "_apis/build/builds")))
        if test_results:
            probes.append(("test runs", client.url(project, "_apis/test/runs")))
    problems: list[Check] = []
    for what, url in probes:
        try:
            try:
                client.get_json(url, {"$top": 1} if what != "connectionData" else None)
            except NotFound:
                if what != "connectionData":
                    raise
                # Servers that mimic only the data APIs (the simulator, proxies) lack connectionData;
                # the projects list proves the same thing: the organization answers and accepts the token.
                url = client.url(None, "_apis/projects")
                client.get_json(url, {"$top": 1})
        except AuthError as exc:
            if exc.status in (401, 403):
                problems.append(Check("FAIL", "source", f"{name}: {url} answered {exc.status}: {_SCOPE_HINT[what]}"))
            else:  # Azure DevOps answers refused credentials with a sign-in page unless told not to
                problems.append(Check("FAIL", "source", f"{name}: {url} redirected to a sign-in page: "
                                      f"{_SCOPE_HINT[what]}"))
        except NotFound:
            problems.append(Check("FAIL", "source", f"{name}: {url} answered HTTP 404"))
        except SourceError as exc:
            if "gave up" in str(exc):
                return [Check("FAIL", "source", f"{name}: {url} is unreachable ({str(exc).rsplit(': ', 1)[-1]})")]
            problems.append(Check("FAIL", "source", f"{name}: {url} answered {str(exc).split(': ', 1)[-1]}"))
    if problems:
        return problems
    return [Check("ok", "source", f"{name}: {client.base} reachable; builds{' and test runs' if test_results else ''} "
                  f"readable in {len(projects)} project(s)")]


def check_source(
    source: AzureDevOpsSource | SimulatorSource | InboxSource | JenkinsSource | JenkinsSimulatorSource,
    settings: Settings,
    failed_secrets: set[str],
    token_provider: Callable[[], str] | None = None,
) -> list[Check]:
    """Reachability and permissions of one source."""
    if isinstance(source, InboxSource):
        path = settings.path(source.path)
        if not path.exists():
            return [Check("warn", "source", f"{source.name}: inbox {path} does not exist yet (no uploads)")]
        if not path.is_dir():
            return [Check("FAIL", "source", f"{source.name}: inbox {path} is not a directory")]
        return [Check("ok", "source", f"{source.name}: inbox {path} readable")]
    if isinstance(source, SimulatorSource):
        return _check_simulator(source)
    if isinstance(source, JenkinsSource | JenkinsSimulatorSource):
        from etl.sources.jenkins.probe import probe_source

        return [Check(status, "source", detail) for status, detail in probe_source(source)]  # type: ignore[arg-type]
    if source.kind in ("github_actions", "github_simulator"):
        from etl.sources.github_actions.doctor import check_github

        return [Check(status, "source", detail) for status, detail in check_github(source, failed_secrets)]
    if source.token is not None and source.token.reference in failed_secrets:
        return [Check("FAIL", "source", f"{source.name}: skipped, its token {source.token} did not resolve")]
    if source.auth == "pat" and source.token is None:
        return [Check("FAIL", "source", f"{source.name}: auth is pat but no token reference is configured")]
    if source.auth == "entra":
        try:
            token_provider = token_provider or entra_token_provider()
            token_provider()
        except Exception as exc:  # azure.identity raises several unrelated types; all mean "no token"
            return [Check("FAIL", "source", f"{source.name}: cannot get an Entra token for Azure DevOps "
                          f"({type(exc).__name__}); is the pipeline's service connection / azure/login set up?")]
    client = client_for_source(source, policy=PROBE_POLICY, token_provider=token_provider)
    try:
        return probe_organization(source.name, client, source.projects, source.test_results)
    finally:
        client.close()


def _check_simulator(source: SimulatorSource) -> list[Check]:
    try:
        from etl.simulator import start_server
    except ImportError:
        return [Check("FAIL", "source", f"{source.name}: the simulator is not installed (etl.simulator)")]
    # One day of data is enough to prove the endpoints answer; the run itself uses the configured size.
    server = start_server(seed=source.seed, days=1, builds_per_day=source.builds_per_day)
    client = AdoClient(source.name, server.url, policy=PROBE_POLICY)
    try:
        return probe_organization(source.name, client, list(server.projects), source.test_results)
    finally:
        client.close()
        server.stop()


def _canonical(kusto_type: str) -> str:
    text = kusto_type.lower()
    return _SAME_TYPE.get(text, text)


def schema_drift(have: dict[str, list[tuple[str, str]]], want: dict[str, TableSchema]) -> list[str]:
    """Each missing table, missing column and column of another type; empty when the store matches."""
    problems = []
    for name, table in sorted(want.items()):
        if name not in have:
            problems.append(f"table {name} is missing")
            continue
        columns = {column: _canonical(kind) for column, kind in have[name]}
        for column in table.columns:
            if column.name not in columns:
                problems.append(f"column {name}.{column.name} is missing")
            elif columns[column.name] != _canonical(column.kusto_type):
                problems.append(f"column {name}.{column.name} is {columns[column.name]} in the store, "
                                f"{column.kusto_type} in kql/tables")
    return problems


def check_last_run(warehouse: Warehouse, require_data: bool) -> Check:
    """The newest EtlRuns row of each source and project: any `failed` one fails the check.

    EtlRuns holds one row per loaded batch (`loaded`), per source with nothing new (`no new data`)
    and per source that could not be read (`failed`); the newest row per source and project is
    where the last scheduled run left it.
    """
    runs = warehouse.query("LatestEtlRuns | project RunId, Source, Project, StartedAt, FinishedAt, Status, Errors")
    if runs.empty:
        return Check("FAIL" if require_data else "warn", "etl", "no ETL run recorded yet")
    runs = runs.copy()
    runs["_at"] = runs["FinishedAt"].fillna(runs["StartedAt"])
    runs["Source"] = runs["Source"].fillna("")
    runs["Project"] = runs["Project"].fillna("")
    latest = runs.sort_values("_at", na_position="first").groupby(["Source", "Project"], sort=True).tail(1)
    newest = pd.Timestamp(latest["_at"].max())
    when = "unknown time" if pd.isna(newest) else newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    bad = latest[~latest["Status"].fillna("unknown").str.lower().isin(_OK_RUN_STATES | _WARN_RUN_STATES)]
    if not bad.empty:
        first = bad.iloc[0]
        where = "/".join(p for p in (first["Source"], first["Project"]) if p)
        error = _first_error(first["Errors"])
        return Check("FAIL", "etl", f"last run of {where} at {when}: {first['Status']}" + (f": {error}" if error else ""))
    counts = latest["Status"].fillna("unknown").value_counts().sort_index()
    states = ", ".join(f"{n} {state}" for state, n in counts.items())
    warned = latest["Status"].fillna("").str.lower().isin(_WARN_RUN_STATES).any()
    return Check("warn" if warned else "ok", "etl", f"last run per source/project: {states} (newest {when})")


def _first_error(errors: Any) -> str:
    if errors is None or (isinstance(errors, float) and pd.isna(errors)):
        return ""
    if isinstance(errors, str):
        try:
            errors = json.loads(errors)
        except ValueError:
            return errors.splitlines()[0][:300] if errors.strip() else ""
    if isinstance(errors, list) and errors:
        return str(errors[0]).splitlines()[0][:300]
    return ""


def check_data_freshness(
    warehouse: Warehouse, settings: Settings, max_age: timedelta, require_data: bool, now: datetime
) -> Check:
    """Newest FinishTime against *max_age*; an empty store is a warning unless data is required."""
    result = check_freshness(warehouse, max_age, now)
    if result.newest is None:
        return Check("FAIL" if require_data else "warn", "freshness", "no data yet: no builds in the store")
    if all(isinstance(s, SimulatorSource | JenkinsSimulatorSource) for s in settings.sources):
        # The simulator's builds end at a fixed point (its `end`, today 00:00 UTC by default), so age
        # says nothing about the pipeline; report it without judging it.
        return Check("ok", "freshness", f"{result.builds} simulated builds, newest finished "
                     f"{result.newest:%Y-%m-%dT%H:%M:%SZ} (freshness not enforced for the simulator)")
    assert result.age is not None
    detail = (f"newest build finished {result.newest:%Y-%m-%dT%H:%M:%SZ}, {format_age(result.age)} ago "
              f"(limit {format_age(max_age)})")
    return Check("ok" if result.fresh else "FAIL", "freshness", detail)


def run_doctor(
    config: Path,
    max_age: timedelta = timedelta(hours=2),
    require_data: bool = False,
    now: datetime | None = None,
    token_provider: Callable[[], str] | None = None,
) -> list[Check]:
    """Every check for the configuration at *config*; the caller prints them and sets the exit code."""
    now = now or datetime.now(UTC)
    try:
        settings = load_config(config)
    except ConfigError as exc:
        return [Check("FAIL", "config", line) for line in str(exc).splitlines()]
    checks = [Check("ok", "config", f"{_display(config)} valid")]
    secret_checks, failed = check_secrets(settings)
    checks += secret_checks
    for source in settings.sources:
        checks += check_source(source, settings, failed, token_provider)
    checks += _warehouse_checks(settings, max_age, require_data, now)
    checks += check_outbox(settings, max_age, now)
    return checks


def check_outbox(settings: Settings, max_age: timedelta, now: datetime) -> list[Check]:
    """FAIL per dead batch, stuck pending batch and growing quarantine in the staging directory; else one ok."""
    staging = settings.path(settings.staging.dir)
    problems = outbox_problems(staging, max_age, now, settings.staging.max_load_attempts)
    if problems:
        return [Check("FAIL", "outbox", line) for line in problems]
    return [Check("ok", "outbox", f"no dead or stuck batch, no new quarantine within {format_age(max_age)} "
                  f"({_display(staging)})")]


def _warehouse_checks(settings: Settings, max_age: timedelta, require_data: bool, now: datetime) -> list[Check]:
    if settings.warehouse.kind == "local":
        path = settings.path(settings.warehouse.path)
        label = f"local {_display(path)}"
        if not path.exists():
            return [Check("FAIL", "warehouse", f"{label} does not exist; run `ci-telemetry schema apply`")]
    else:
        label = f"kusto {settings.warehouse.cluster_url}/{settings.warehouse.database}"
    try:
        warehouse = open_warehouse(settings, read_only=settings.warehouse.kind == "local")
    except (WarehouseError, SecretError, OSError) as exc:
        return [Check("FAIL", "warehouse", f"{label}: {str(exc).splitlines()[0]}")]
    except Exception as exc:  # the engines' own error types (duckdb, azure-kusto) differ; all mean unreachable
        return [Check("FAIL", "warehouse", f"{label}: cannot open ({type(exc).__name__}: {str(exc).splitlines()[0]})")]
    try:
        try:
            have = warehouse.list_tables()
        except Exception as exc:
            return [Check("FAIL", "warehouse", f"{label}: unreachable ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})")]
        checks = [Check("ok", "warehouse", f"{label} reachable ({len(have)} tables)")]
        want = load_tables()
        drift = schema_drift(have, want)
        checks += [Check("FAIL", "schema", f"{p}; run `ci-telemetry schema apply`") for p in drift]
        if not drift:
            checks.append(Check("ok", "schema", f"{len(want)} tables match kql/tables"))
        missing = {p.split()[1] for p in drift if p.startswith("table ")}
        if "EtlRuns" in missing:
            checks.append(Check("FAIL", "etl", "skipped: table EtlRuns is missing"))
        else:
            checks.append(_guarded("etl", lambda: check_last_run(warehouse, require_data)))
        if "TimelineBuilds" in missing:
            checks.append(Check("FAIL", "freshness", "skipped: table TimelineBuilds is missing"))
        else:
            checks.append(_guarded("freshness",
                                   lambda: check_data_freshness(warehouse, settings, max_age, require_data, now)))
        return checks
    finally:
        warehouse.close()


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except WarehouseError as exc:
        return Check("FAIL", name, str(exc).splitlines()[0])
