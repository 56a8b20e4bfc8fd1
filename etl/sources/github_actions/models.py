"""Pydantic models of the GitHub Actions REST and webhook payloads the ETL reads.

Only the fields used are declared; every other field is ignored, so API additions never break a run.
Shapes follow github/rest-api-description (workflow run, job with steps, artifact) and the
octokit/webhooks payloads (`workflow_run`, `workflow_job`), which carry the same objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Ids land in `long` columns and attempts/step numbers in `int` ones: a larger number is corrupt input,
# rejected here with the field named rather than overflowing when the rows are written.
Id = Annotated[int, Field(ge=0, lt=2**63)]
Small = Annotated[int, Field(ge=0, lt=2**31)]


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Account(Lenient):
    login: str
    id: Id | None = None
    type: str | None = None


class Repository(Lenient):
    id: Id | None = None
    name: str
    full_name: str | None = None
    owner: Account


class PullRequestRef(Lenient):
    ref: str | None = None
    sha: str | None = None


class PullRequest(Lenient):
    number: Id
    base: PullRequestRef | None = None
    head: PullRequestRef | None = None


class WorkflowRun(Lenient):
    """`GET /repos/{owner}/{repo}/actions/runs/{run_id}` (and each item of the runs list)."""

    id: Id
    name: str | None = None
    path: str | None = None
    workflow_id: Id | None = None
    run_number: Id | None = None
    run_attempt: Annotated[int, Field(ge=1, lt=2**31)] = 1
    event: str | None = None
    status: str | None = None
    conclusion: str | None = None
    head_branch: str | None = None
    head_sha: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    run_started_at: datetime | None = None
    html_url: str | None = None
    actor: Account | None = None
    triggering_actor: Account | None = None
    pull_requests: list[PullRequest] = Field(default_factory=list)
    repository: Repository | None = None


class RunsPage(Lenient):
    """`GET /repos/{owner}/{repo}/actions/runs` — one page; the list stops at 1,000 results per query."""

    total_count: int
    workflow_runs: list[WorkflowRun]


class Step(Lenient):
    name: str
    status: str | None = None
    conclusion: str | None = None
    number: Small
    started_at: datetime | None = None
    completed_at: datetime | None = None


class Job(Lenient):
    """One job of a run attempt, with its steps (REST `jobs[]` item or webhook `workflow_job`)."""

    id: Id
    run_id: Id
    run_attempt: Annotated[int, Field(ge=1, lt=2**31)] | None = None
    name: str
    workflow_name: str | None = None
    head_branch: str | None = None
    head_sha: str | None = None
    status: str | None = None
    conclusion: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    html_url: str | None = None
    labels: list[str] = Field(default_factory=list)
    runner_id: Id | None = None
    runner_name: str | None = None
    runner_group_id: Id | None = None
    runner_group_name: str | None = None
    steps: list[Step] = Field(default_factory=list)


class JobsPage(Lenient):
    """`GET …/actions/runs/{run_id}/attempts/{n}/jobs` — one page."""

    total_count: int
    jobs: list[Job]


class ArtifactRun(Lenient):
    id: Id | None = None
    head_branch: str | None = None
    head_sha: str | None = None


class Artifact(Lenient):
    """One artifact of a run; an expired one (`expired: true`, or 410 on download) is absent, not an error."""

    id: Id
    name: str
    size_in_bytes: Id | None = None
    archive_download_url: str | None = None
    expired: bool = False
    created_at: datetime | None = None
    expires_at: datetime | None = None
    digest: str | None = None
    workflow_run: ArtifactRun | None = None


class ArtifactsPage(Lenient):
    """`GET …/actions/runs/{run_id}/artifacts` — one page."""

    total_count: int
    artifacts: list[Artifact]


class WorkflowRunEvent(Lenient):
    """Webhook `workflow_run`: the run, whose repository is given beside it."""

    action: str
    workflow_run: WorkflowRun
    repository: Repository


class WorkflowJobEvent(Lenient):
    """Webhook `workflow_job`: one job with its steps, and its repository."""

    action: str
    workflow_job: Job
    repository: Repository


class Annotation(Lenient):
    """`GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations` item (a job id is its check run id)."""

    path: str | None = None
    start_line: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    end_line: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    annotation_level: str | None = None
    title: str | None = None
    message: str | None = None
    raw_details: str | None = None
