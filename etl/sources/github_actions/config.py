"""Settings of the GitHub Actions sources: a real GitHub (`kind: github_actions`) and the simulated one.

Defined here, beside the source, and added to the `sources:` union of `etl.config` with one line.
The models import nothing from `etl.config` so that module can import them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from etl.secret_refs import SecretRef


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _GitHubReading(_Strict):
    """What both kinds read, and how hard they try."""

    telemetry_artifacts: list[str] = Field(
        default_factory=lambda: ["telemetry-data"],
        description="Run artifacts holding metrics.json / build-summary.json (the build-telemetry action's `telemetry-data`).")
    junit_artifacts: list[str] = Field(
        default_factory=lambda: ["test-results*"],
        description="Run artifacts holding JUnit XML reports; `*` globs allowed (e.g. `test-results-*`).")
    annotations: bool = Field(default=True, description="Read the check-run annotations of failed jobs (TimelineIssues).")
    workflow_files: bool = Field(
        default=True, description="Read each run's workflow file at its commit to name the action of every step.")
    batch_size: int = Field(default=50, ge=1, le=1000, description="Workflow runs per ETL batch.")
    rerun_lookback_days: int = Field(
        default=3, ge=0, le=35,
        description="Runs created this many days before the watermark are listed again, so a re-run attempt is read.")
    max_parallel_requests: int = Field(default=4, ge=1, le=32, description="Requests in flight at once.")


class GitHubActionsSource(_GitHubReading):
    """GitHub Actions workflow runs of some repositories (or of every repository of an organization)."""

    kind: Literal["github_actions"] = Field(default="github_actions", description="Selects this kind of source.")
    name: str = Field(description="Short name of this source, used in state and EtlRuns.")
    api_url: str = Field(default="https://api.github.com",
                         description="REST API root (GitHub Enterprise Server: https://HOST/api/v3).")
    owner: str = Field(description="The organization or user owning the repositories.")
    repositories: list[str] = Field(
        default_factory=list, description="Repository names under `owner` (empty: every repository of the organization).")
    token: SecretRef = Field(description="A fine-grained PAT or GitHub App installation token (Actions: read, Checks: read, Contents: read).")
    request_timeout_seconds: float = Field(default=60, gt=0, description="Timeout of one HTTP request.")
    max_retries: int = Field(default=6, ge=0, le=20, description="Retries of a secondary rate limit, 5xx or connection error.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="First back-off; doubles per retry, with jitter.")
    max_backoff_seconds: float = Field(default=60.0, ge=0, description="Longest single wait, retry-after included.")
    max_rate_limit_wait_seconds: float = Field(
        default=3900, ge=0, description="Longest pause for an exhausted rate limit (until `x-ratelimit-reset`); past it the source stops.")
    initial_lookback_days: int = Field(default=30, ge=1, le=400, description="How far back the first run reads.")

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as https://api.github.com")
        return value.rstrip("/")


class GitHubSimulatorSource(_GitHubReading):
    """The simulated organization served through a simulated GitHub REST API on loopback for the run."""

    kind: Literal["github_simulator"] = Field(default="github_simulator", description="Selects this kind of source.")
    name: str = Field(default="simulated-github", description="Short name of this source, used in state and EtlRuns.")
    owner: str = Field(default="octo-sim", description="The simulated organization's login (Organization column).")
    seed: int = Field(default=8, description="Same seed, same organization.")
    days: int = Field(default=28, ge=1, le=365, description="Days of simulated history, ending today 00:00 UTC.")
    builds_per_day: int = Field(default=6, ge=1, le=2000, description="Completed workflow runs per day.")
    rate_limit: int = Field(default=5000, ge=1, description="Requests per rate-limit window the simulated API allows.")

    @model_validator(mode="after")
    def _names(self) -> GitHubSimulatorSource:
        if not self.owner.strip():
            raise ValueError("owner must not be empty")
        return self
