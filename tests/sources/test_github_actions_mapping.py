"""Every GitHub Actions sample normalizes into TimelineBuilds/TimelineRecords rows; exact mapped values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from etl.normalize.context import describe_validation_error
from etl.privacy import apply_policy
from etl.sources.github_actions.mapping import (
    build_kind,
    facts_for_job,
    normalize_jobs,
    normalize_run,
    result,
    step_action,
    wanted_artifacts,
)
from etl.sources.github_actions.models import (
    ArtifactsPage,
    Job,
    JobsPage,
    RunsPage,
    WorkflowJobEvent,
    WorkflowRun,
    WorkflowRunEvent,
)
from tests.conftest import SAMPLES
from tests.normalize.test_normalize_samples import assert_fits, make_ctx

GHA = SAMPLES / "github-actions"
REST = GHA / "rest-api-description"
FILES = sorted(p for p in GHA.rglob("*.json") if p.name != "MANIFEST.json")


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def run_sample() -> WorkflowRun:
    return WorkflowRun.model_validate(load(REST / "get-workflow-run__workflow-run.json"))


def normalize_file(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows per table of one sample, chosen by its shape."""
    ctx = make_ctx()
    _, facts = normalize_run(ctx, run_sample())
    if "workflow_runs" in data:
        rows = [normalize_run(ctx, run)[0] for run in RunsPage.model_validate(data).workflow_runs]
        return {"TimelineBuilds": rows}
    if "workflow_run" in data and "action" in data:
        event = WorkflowRunEvent.model_validate(data)
        return {"TimelineBuilds": [normalize_run(ctx, event.workflow_run, event.repository,
                                                 (data.get("workflow") or {}).get("name"))[0]]}
    if "workflow_job" in data:
        event = WorkflowJobEvent.model_validate(data)
        return {"TimelineRecords": normalize_jobs(ctx, facts_for_job(event.repository, event.workflow_job),
                                                  [event.workflow_job])}
    if "jobs" in data:
        return {"TimelineRecords": normalize_jobs(ctx, facts, JobsPage.model_validate(data).jobs)}
    if "steps" in data:
        return {"TimelineRecords": normalize_jobs(ctx, facts, [Job.model_validate(data)])}
    if "artifacts" in data:
        return {"artifacts": [a.model_dump() for a in ArtifactsPage.model_validate(data).artifacts]}
    if "workflow_id" in data:
        return {"TimelineBuilds": [normalize_run(ctx, WorkflowRun.model_validate(data))[0]]}
    return {}  # run usage (billable minutes): not a table yet


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_sample_normalizes_into_rows_that_fit_the_tables(path: Path) -> None:
    tables = normalize_file(load(path))
    for name, rows in tables.items():
        if name != "artifacts":
            assert_fits(name, rows)
    assert tables or path.name.startswith("get-workflow-run-usage")


def test_samples_cover_runs_jobs_artifacts_and_webhooks() -> None:
    assert len(FILES) == 11


def test_run_maps_owner_repository_workflow_run_id_and_attempt() -> None:
    row, facts = normalize_run(make_ctx(), run_sample())
    assert {k: row[k] for k in ("Organization", "Project", "BuildId", "BuildNumber", "Definition", "DefinitionId",
                                "Repository", "BuildKind", "Status", "Result", "Attempts", "SourceBranch",
                                "TargetBranch", "SourceVersion")} == {
        "Organization": "octocat", "Project": "Hello-World", "BuildId": 30433642, "BuildNumber": "562",
        "Definition": "Build", "DefinitionId": 159038, "Repository": "octocat/Hello-World", "BuildKind": "Rolling",
        "Status": "pending", "Result": None, "Attempts": 1, "SourceBranch": "refs/heads/main",
        "TargetBranch": "refs/heads/main", "SourceVersion": "acb5820ced9479c074f688cc328bf03f341a511d",
    }
    assert (facts.organization, facts.project, facts.build_id) == ("octocat", "Hello-World", 30433642)


def test_run_actor_is_pseudonymized_by_the_field_policy() -> None:
    ctx = make_ctx()
    row, _ = normalize_run(ctx, run_sample())
    assert row["RequestedFor"] == "octocat"
    assert apply_policy(ctx.scrubber, "TimelineBuilds", [row])[0]["RequestedFor"] == ctx.scrubber.pseudonymize(
        "octocat")


def test_webhook_run_with_pull_request_takes_base_branch_and_number_and_workflow_name() -> None:
    data = load(GHA / "octokit-webhooks" / "workflow_run_completed.with-pull-requests.payload.json")
    event = WorkflowRunEvent.model_validate(data)
    row, _ = normalize_run(make_ctx(), event.workflow_run, event.repository, data["workflow"]["name"])
    assert (row["Definition"], row["PullRequestNumber"], row["TargetBranch"], row["Result"], row["Status"]) == (
        data["workflow"]["name"], 2, "refs/heads/master", "succeeded", "completed")
    assert row["DurationSeconds"] == 0.0


def test_job_and_steps_become_records_with_paths() -> None:
    job = Job.model_validate(load(REST / "get-job-for-workflow-run__job.json"))
    rows = normalize_jobs(make_ctx(), normalize_run(make_ctx(), run_sample())[1], [job], attempt=2)
    assert [(r["RecordId"], r["Type"], r["Path"], r["ParentId"], r["Attempt"]) for r in rows[:3]] == [
        ("399444496", "Job", "0001", None, 2),
        ("399444496.1", "Task", "0001.0001", "399444496", 2),
        ("399444496.2", "Task", "0001.0002", "399444496", 2),
    ]
    assert (rows[0]["DurationSeconds"], rows[0]["Result"], rows[0]["QueueId"]) == (119.0, "succeeded", 2)
    stored = apply_policy(make_ctx().scrubber, "TimelineRecords", [dict(rows[0])])[0]
    assert (rows[0]["WorkerName"], stored["WorkerName"]) == ("my runner", make_ctx().scrubber.pseudonymize("my runner"))
    assert (rows[2]["TaskName"], rows[2]["TaskVersion"]) == ("actions/checkout", "v2")


def test_failed_step_is_failed_and_classified() -> None:
    data = load(GHA / "octokit-webhooks" / "workflow_job_completed.failure.with-organization.payload.json")
    event = WorkflowJobEvent.model_validate(data)
    rows = normalize_jobs(make_ctx(), facts_for_job(event.repository, event.workflow_job), [event.workflow_job])
    failed = [(r["Name"], r["Path"], r["ResultCode"]) for r in rows if r["Result"] == "failed"]
    assert failed == [("linters", "0001", "failure"), ("Run yarn run format-check", "0001.0008", "failure")]
    assert all(r["Signature"] is not None for r in rows if r["Result"] == "failed")
    assert rows[0]["Attempt"] == 1 and rows[0]["BuildId"] == 2202229078


def test_queued_steps_have_no_times_and_pending_state() -> None:
    data = load(GHA / "octokit-webhooks" / "workflow_job_in_progress.with-queued-steps.payload.json")
    event = WorkflowJobEvent.model_validate(data)
    rows = normalize_jobs(make_ctx(), facts_for_job(event.repository, event.workflow_job), [event.workflow_job])
    queued = [r for r in rows if r["State"] == "pending"]
    assert len(queued) == 6
    assert {(r["StartTime"], r["DurationSeconds"], r["Result"]) for r in queued} == {(None, None, None)}


def test_a_job_listed_twice_gives_one_record() -> None:
    job = Job.model_validate(load(REST / "get-job-for-workflow-run__job.json"))
    rows = normalize_jobs(make_ctx(), normalize_run(make_ctx(), run_sample())[1], [job, job])
    assert [r["Type"] for r in rows].count("Job") == 1


@pytest.mark.parametrize(("event", "kind"), [("pull_request", "PullRequest"), ("push", "Rolling"),
                                             ("schedule", "Scheduled"), ("workflow_dispatch", "Manual"),
                                             ("release", "Other"), (None, "Other")])
def test_build_kind_from_event(event: str | None, kind: str) -> None:
    assert build_kind(event) == kind


@pytest.mark.parametrize(("conclusion", "mapped"), [("success", "succeeded"), ("failure", "failed"),
                                                    ("timed_out", "failed"), ("cancelled", "canceled"),
                                                    ("skipped", "skipped"), (None, None)])
def test_conclusion_in_azure_devops_vocabulary(conclusion: str | None, mapped: str | None) -> None:
    assert result(conclusion) == mapped


def test_step_action_only_from_default_uses_names() -> None:
    assert step_action("Post Run actions/cache@v2") == ("actions/cache", "v2")
    assert step_action("Run github/codeql-action/init@v3") == ("github/codeql-action/init", "v3")
    assert step_action("Run yarn install") == (None, None)


def test_expired_artifacts_are_absent() -> None:
    page = ArtifactsPage.model_validate(load(REST / "list-workflow-run-artifacts__artifact-paginated.json"))
    names = {a.name for a in page.artifacts}
    assert [a.name for a in wanted_artifacts(page.artifacts, names)] == [
        a.name for a in page.artifacts if not a.expired]
    page.artifacts[0].expired = True
    assert page.artifacts[0] not in wanted_artifacts(page.artifacts, names)



@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"id": 10**30}, "id", "Input should be less than 9223372036854775808 1000000000000000000000000000000"),
    ({"run_attempt": 0}, "run_attempt", "Input should be greater than or equal to 1 0"),
    ({"created_at": "NaN"}, "created_at", "invalid datetime 'NaN'"),
    ({"id": "abc"}, "id", "invalid number 'abc'"),
])
def test_hostile_run_field_is_named_in_one_line(change: dict[str, Any], field: str, reason: str) -> None:
    raw = {**load(REST / "get-workflow-run__workflow-run.json"), **change}
    with pytest.raises(ValidationError) as exc:
        WorkflowRun.model_validate(raw)
    assert describe_validation_error(exc.value) == (field, reason)


def test_huge_step_number_is_rejected() -> None:
    raw = load(REST / "get-job-for-workflow-run__job.json")
    raw["steps"][0]["number"] = 2**40
    with pytest.raises(ValidationError) as exc:
        Job.model_validate(raw)
    assert describe_validation_error(exc.value)[0] == "steps.0.number"
