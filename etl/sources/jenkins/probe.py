"""`ci-telemetry doctor` for a Jenkins source: can the user read the controller and each configured job?"""

from __future__ import annotations

from etl.secret_refs import SecretError
from etl.sources.jenkins.client import AuthError, JenkinsClient, JenkinsError, NotFound, job_path
from etl.sources.jenkins.config import JenkinsSimulatorSource, JenkinsSource

#: (status, detail) lines; the doctor wraps them in its own Check rows.
Finding = tuple[str, str]


def probe(name: str, client: JenkinsClient, jobs: list[str]) -> list[Finding]:
    """One line for the controller and one per configured job; 401/403 stop the probe."""
    try:
        body = client.json("/api/json", {"tree": "jobs[name]"})
    except AuthError as exc:
        return [("FAIL", str(exc))]
    except JenkinsError as exc:
        return [("FAIL", str(exc))]
    top = [j.get("name") for j in body.get("jobs") or [] if isinstance(j, dict)]
    out = [("ok", f"{name}: {client.base_url} readable, {len(top)} top-level item(s)")]
    for job in jobs:
        try:
            client.json(job_path(job) + "/api/json", {"tree": "_class"})
            out.append(("ok", f"{name}: job or folder {job!r} readable"))
        except NotFound:
            out.append(("FAIL", f"{name}: job or folder {job!r}: not found (HTTP 404)"))
        except JenkinsError as exc:
            out.append(("FAIL", str(exc)))
    return out


def probe_source(source: JenkinsSource | JenkinsSimulatorSource) -> list[Finding]:
    """Findings of one configured source; the simulated controller is started with one day of data."""
    if isinstance(source, JenkinsSimulatorSource):
        from etl.simulator.jenkins import start_jenkins

        server = start_jenkins(seed=source.seed, days=1, builds_per_day=source.builds_per_day)
        client = JenkinsClient(source.name, server.url, server.user, server.token, max_retries=1, backoff=0)
        try:
            return probe(source.name, client, [])
        finally:
            client.close()
            server.stop()
    try:
        token = source.token.reveal()
    except SecretError:
        return [("FAIL", f"{source.name}: skipped, its token {source.token} did not resolve")]
    client = JenkinsClient(source.name, source.url, source.user, token, timeout=10, max_retries=1, backoff=0.5)
    try:
        return probe(source.name, client, list(source.jobs))
    finally:
        client.close()
