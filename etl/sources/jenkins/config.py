"""Settings of a Jenkins controller to read (`kind: jenkins`) and of the simulated one (`kind: jenkins_simulator`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from etl.secret_refs import SecretRef

_METRICS = ["**/metrics.json", "**/build-summary.json"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Reading(_Strict):
    """What is read of each build, shared by the real and the simulated controller."""

    page_size: int = Field(default=100, ge=1, le=1000, description="Builds per `allBuilds[...]{a,b}` range request.")
    batch_size: int = Field(default=50, ge=1, le=5000, description="Builds per ETL batch (builds finishing at the same millisecond stay together).")
    overlap_hours: float = Field(default=48, ge=0, description="Builds started this long before the watermark are still listed: a long build may finish after a newer short one.")
    test_report: bool = Field(default=True, description="Read each build's `testReport` (404: the build has no tests).")
    metrics_artifacts: list[str] = Field(default_factory=lambda: list(_METRICS), description="Globs of archived artifact paths read as metrics documents (metrics.json schema or build-summary.json).")
    junit_artifacts: list[str] = Field(default_factory=list, description="Globs of archived artifact paths read as JUnit XML (empty: tests come from `testReport` only, which the `junit` step already fills).")
    max_artifact_bytes: int = Field(default=5_000_000, ge=1, description="Larger archived artifacts are quarantined unread.")
    max_parallel_requests: int = Field(default=4, ge=1, le=64, description="Builds whose details are read at once.")
    initial_lookback_days: int = Field(default=30, ge=1, description="How far back the first run reads.")


class JenkinsSource(_Reading):
    """A Jenkins controller to pull pipeline builds from."""

    kind: Literal["jenkins"] = Field(default="jenkins", description="Selects this kind of source.")
    name: str = Field(description="Short name of this source, used in state and EtlRuns.")
    url: str = Field(description="The controller's base URL, e.g. https://ci.example.com/jenkins (any URL, so tests can use loopback).")
    user: str = Field(description="The Jenkins user the API token belongs to (HTTP basic auth).")
    token: SecretRef = Field(description="The user's API token; a secret reference (env:// or keyvault://).")
    organization: str | None = Field(default=None, description="The Organization column of its rows (Jenkins has none); null: the URL's host name.")
    jobs: list[str] = Field(default_factory=list, description="Job or folder full names (`team/service`), folders walked recursively; one scope each (empty: every top-level item).")
    request_timeout_seconds: float = Field(default=60, gt=0, description="Timeout of one HTTP request.")
    max_retries: int = Field(default=6, ge=0, le=20, description="Retries of a 5xx, a cut-off body or a connection error.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="First back-off; doubles per retry, with jitter.")
    max_backoff_seconds: float = Field(default=60.0, ge=0, description="Longest single wait.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as https://ci.example.com")
        return value.rstrip("/")

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, value: list[str]) -> list[str]:
        names = [v.strip("/") for v in value]
        for a in names:
            for b in names:
                if a != b and b.startswith(a + "/"):
                    raise ValueError(f"{b!r} is inside {a!r}: each build must belong to one scope")
        return names


class JenkinsSimulatorSource(_Reading):
    """The simulated organization served through a simulated Jenkins controller on loopback, for the run."""

    kind: Literal["jenkins_simulator"] = Field(default="jenkins_simulator", description="Selects this kind of source.")
    name: str = Field(default="jenkins-simulated", description="Short name of this source, used in state and EtlRuns.")
    organization: str = Field(default="jenkins-sim", description="The Organization column of its rows (distinct from the other simulated systems).")
    seed: int = Field(default=7, description="Same seed, same organization.")
    days: int = Field(default=28, ge=1, le=365, description="Days of simulated history, ending today 00:00 UTC.")
    builds_per_day: int = Field(default=12, ge=1, le=1000, description="Completed builds per day.")

    @model_validator(mode="after")
    def _named(self) -> JenkinsSimulatorSource:
        if not self.organization:
            raise ValueError("organization must not be empty")
        return self
