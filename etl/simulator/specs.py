"""The plan of a simulated organization: compact specs of builds, jobs, attempts, tests and metrics.

Pure data. The planner (`etl.simulator.model`) fills them in; the renderers (`etl.simulator.render`)
expand them into Azure DevOps bodies; the ground truth counts from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from etl.simulator import catalog as cat
from etl.simulator.catalog import Definition, IssueSpec, JobTemplate, TaskTemplate

MAX_ATTEMPTS = 3


def today_utc() -> datetime:
    """Today 00:00 UTC: the default `end` anchor (the only clock read of the simulator)."""
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def iso(value: datetime | None) -> str | None:
    """ADO's timestamp style: up to 7 fractional digits, trailing zeros trimmed, `Z`."""
    if value is None:
        return None
    frac = f"{value.microsecond:06d}0".rstrip("0")
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


@dataclass(eq=False)  # identity: plans are compared by object, never by value
class TestRunPlan:
    """One test run (a test job attempt that reached its test step)."""

    outcomes: dict[int, tuple[str, str]]  # test index -> (code, error message); others take the default
    started: float
    completed: float
    id: int = 0
    #: Data-driven cases beyond the definition's tests (rows of one parameterized test, all passing).
    extra: int = 0


@dataclass(eq=False)
class JobRun:
    """One attempt of a job."""

    attempt: int
    round: int
    record_id: str
    seed: int
    start: float
    finish: float
    result: str  # succeeded | failed | canceled | succeededWithIssues
    n_tasks: int
    fail_index: int | None = None  # the task that failed / was cancelled
    fail_result: str = "failed"
    swi_index: int | None = None  # a continue-on-error task (succeededWithIssues)
    issues: dict[int, list[IssueSpec]] = field(default_factory=dict)  # task index, -1 = the job record
    worker: str = ""
    durations: list[float] = field(default_factory=list)
    test_run: TestRunPlan | None = None
    category: str | None = None  # why it failed


@dataclass(eq=False)
class JobPlan:
    """A job of a stage and its attempts."""

    template: JobTemplate
    identifier: str
    phase_id: str
    tasks: list[TaskTemplate]
    runs: list[JobRun] = field(default_factory=list)

    def run_as_of(self, round_: int) -> JobRun | None:
        """The latest attempt that had run by the end of `round_`."""
        found = None
        for run in self.runs:
            if run.round <= round_:
                found = run
        return found


@dataclass(eq=False)
class StagePlan:
    """A stage: its jobs, and whether it ever ran."""

    name: str
    record_id: str
    order: int
    jobs: list[JobPlan]
    checkpoint_id: str | None = None


@dataclass(eq=False)
class MetricsPlan:
    """The figures of a build's uploaded metrics documents."""

    platform: str
    end_offset: float
    duration: float
    peak_memory: float
    seed: int
    metrics_json: bool = True
    summary_json: bool = False
    duration_factor: float = 1.0
    memory_factor: float = 1.0
    n_samples: int = 10
    stages: tuple[tuple[str, str], ...] = ()  # (name, status)
    failure: tuple[str, str, str] | None = None  # category, stage, reason


@dataclass(eq=False)
class BuildPlan:
    """Everything about one build; bodies are rendered from this."""

    project: str
    definition: Definition
    seed: int
    finish_target: datetime
    kind: str  # normal | config | cancel_early | cancel | inprogress
    reason: str = "individualCI"
    source_branch: str = "refs/heads/main"
    target_branch: str | None = None
    pr_number: int | None = None
    pr_source: str | None = None
    pr_style: str = "both"  # which of parameters / triggerInfo carry the PR facts
    commit: str = ""
    commit_birth: datetime | None = None
    person: tuple[str, str] = cat.PEOPLE[0]
    id: int = 0
    number: str = ""
    queue: datetime | None = None
    start_offset: float | None = None
    finish_offset: float = 0.0
    result: str | None = None
    stages: list[StagePlan] = field(default_factory=list)
    rounds: int = 1
    round_timelines: list[tuple[str, str]] = field(default_factory=list)  # previous attempts: (id, full|patch)
    timeline_id: str = ""
    plan_id: str = ""
    validation: list[tuple[str, str, str | None]] = field(default_factory=list)  # result, message, category
    failure_category: str | None = None
    metrics: MetricsPlan | None = None
    forced: str = ""  # retry-full | retry-patch: planted so even tiny organizations have these shapes

    @property
    def status(self) -> str:
        return "inProgress" if self.kind == "inprogress" else "completed"

    def at(self, offset: float | None) -> datetime | None:
        """Absolute time of an offset (seconds after queue time)."""
        if offset is None or self.queue is None:
            return None
        return self.queue + timedelta(seconds=offset)

    @property
    def finish(self) -> datetime | None:
        return None if self.kind == "inprogress" else self.at(self.finish_offset)

    @property
    def start(self) -> datetime | None:
        return self.at(self.start_offset)

    def jobs(self) -> list[JobPlan]:
        return [job for stage in self.stages for job in stage.jobs]

    def test_runs(self) -> list[tuple[JobPlan, JobRun]]:
        """The build's test runs with the job attempt each belongs to."""
        return [(job, run) for job in self.jobs() for run in job.runs if run.test_run is not None]


@dataclass(frozen=True)
class TestCase:
    """A test of a definition and how it behaves."""

    name: str
    storage: str
    kind: str  # stable | ignored | flaky | broken
    flake_rate: float = 0.0
    broken_from: datetime | None = None
    broken_until: datetime | None = None


