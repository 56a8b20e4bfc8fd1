"""Pydantic models of the Azure DevOps payloads the ETL reads.

Only the fields used are declared; every other field is allowed and ignored, so API additions never
break a run. Validators absorb the variants real captures show: ids sent as strings, `durationInMs`
a float or absent, `records: null`, 7-digit fractional seconds, `0001-01-01` placeholders for
"never", `previousAttempts: ""`, and `task` serialized as PowerShell's `@{id=..; name=..}` text.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Required, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, TypeAdapter, field_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from etl.schema import INTEGER_RANGES

#: Whole numbers as the columns they load into hold them (Kusto `long`, `int`): a bigger one (JSON allows
#: any) fails its record's validation, so that record is quarantined alone, not the build at staging.
Long = Annotated[int, Field(ge=INTEGER_RANGES["long"][0], le=INTEGER_RANGES["long"][1])]
Int32 = Annotated[int, Field(ge=INTEGER_RANGES["int"][0], le=INTEGER_RANGES["int"][1])]


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=False)


def _never_is_none(value: Any) -> Any:
    # Azure DevOps writes DateTime.MinValue for "not set".
    if isinstance(value, str) and value.startswith("0001-01-01"):
        return None
    if value == "":
        return None
    return value


class Ref(Lenient):
    id: str | None = None
    name: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class IdentityRef(Lenient):
    displayName: str | None = None
    uniqueName: str | None = None


class Definition(Lenient):
    id: int
    name: str | None = None
    path: str | None = None


class Repository(Lenient):
    id: str | None = None
    name: str | None = None
    type: str | None = None


class Queue(Lenient):
    id: int | None = None
    name: str | None = None
    pool: Ref | None = None


class ValidationResult(Lenient):
    result: str | None = None
    message: str | None = None


class Build(Lenient):
    """One item of `_apis/build/builds` (or `_apis/build/builds/{id}`)."""

    id: int
    buildNumber: str | None = None
    status: str | None = None
    result: str | None = None
    reason: str | None = None
    queueTime: datetime | None = None
    startTime: datetime | None = None
    finishTime: datetime | None = None
    lastChangedDate: datetime | None = None
    sourceBranch: str | None = None
    sourceVersion: str | None = None
    definition: Definition | None = None
    project: Ref | None = None
    repository: Repository | None = None
    queue: Queue | None = None
    requestedFor: IdentityRef | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: str | None = None
    triggerInfo: dict[str, Any] = Field(default_factory=dict)
    validationResults: list[ValidationResult] = Field(default_factory=list)
    uri: str | None = None
    url: str | None = None
    links: dict[str, Any] = Field(default_factory=dict, alias="_links")

    @field_validator("queueTime", "startTime", "finishTime", "lastChangedDate", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _never_is_none(value)

    @field_validator("tags", "validationResults", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return value or []

    @field_validator("triggerInfo", "links", mode="before")
    @classmethod
    def _dicts(cls, value: Any) -> Any:
        return value or {}

    @property
    def web_url(self) -> str | None:
        web = self.links.get("web") if isinstance(self.links, dict) else None
        return (web or {}).get("href") if isinstance(web, dict) else self.url


class Issue(Lenient):
    type: str | None = None
    category: str | None = None
    message: str | None = None
    data: dict[str, Any] | None = None

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None


class TaskRef(Lenient):
    id: str | None = None
    name: str | None = None
    version: str | None = None


_PS_HASH = re.compile(r"(\w+)=([^;}]*)")


class PreviousAttempt(Lenient):
    attempt: int
    timelineId: str | None = None
    recordId: str | None = None


class LogRef(Lenient):
    id: Long | None = None
    url: str | None = None


class TimelineRecord(Lenient):
    """One record of a timeline (Stage, Phase, Job, Task, Checkpoint, ...)."""

    id: str
    parentId: str | None = None
    type: str | None = None
    name: str | None = None
    identifier: str | None = None
    order: Long | None = None
    state: str | None = None
    result: str | None = None
    resultCode: str | None = None
    startTime: datetime | None = None
    finishTime: datetime | None = None
    lastModified: datetime | None = None
    workerName: str | None = None
    queueId: Long | None = None
    changeId: Long | None = None
    errorCount: Int32 | None = None
    warningCount: Int32 | None = None
    attempt: Int32 = 1
    previousAttempts: list[PreviousAttempt] = Field(default_factory=list)
    task: TaskRef | None = None
    log: LogRef | None = None
    issues: list[Issue] = Field(default_factory=list)

    @field_validator("startTime", "finishTime", "lastModified", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _never_is_none(value)

    @field_validator("previousAttempts", "issues", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []

    @field_validator("attempt", mode="before")
    @classmethod
    def _attempt(cls, value: Any) -> Any:
        return 1 if value in (None, "", 0) else value

    @field_validator("task", "log", mode="before")
    @classmethod
    def _task(cls, value: Any) -> Any:
        if isinstance(value, str):
            # PowerShell-serialized hashtable, as some captured payloads hold.
            return {k: v.strip() for k, v in _PS_HASH.findall(value)} or None
        return value


class Timeline(Lenient):
    id: str | None = None
    changeId: int | None = None
    records: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("records", mode="before")
    @classmethod
    def _records(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []


class StageReference(Lenient):
    stageName: str | None = None
    attempt: int | None = None


class PhaseReference(Lenient):
    phaseName: str | None = None
    attempt: int | None = None


class JobReference(Lenient):
    jobName: str | None = None
    attempt: int | None = None


class PipelineReference(Lenient):
    pipelineId: int | None = None
    stageReference: StageReference | None = None
    phaseReference: PhaseReference | None = None
    jobReference: JobReference | None = None


class TestRun(Lenient):
    __test__ = False  # not a pytest test class
    id: int
    name: str | None = None
    state: str | None = None
    startedDate: datetime | None = None
    completedDate: datetime | None = None
    totalTests: int | None = None
    passedTests: int | None = None
    unanalyzedTests: int | None = None
    notApplicableTests: int | None = None
    incompleteTests: int | None = None
    runStatistics: list[dict[str, Any]] = Field(default_factory=list)
    pipelineReference: PipelineReference | None = None
    build: Ref | None = None

    @field_validator("startedDate", "completedDate", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _never_is_none(value)

    @field_validator("runStatistics", mode="before")
    @classmethod
    def _stats(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []

    @property
    def attempt(self) -> int:
        ref = self.pipelineReference
        for part in (ref and ref.jobReference, ref and ref.phaseReference, ref and ref.stageReference):
            if part is not None and part.attempt:
                return part.attempt
        return 1


class SubResult(Lenient):
    id: int | None = None
    outcome: str | None = None
    displayName: str | None = None
    durationInMs: float | None = None
    errorMessage: str | None = None
    resultGroupType: str | None = None
    subResults: list[SubResult] = Field(default_factory=list)

    @field_validator("subResults", mode="before")
    @classmethod
    def _subs(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []


class TestResult(Lenient):
    __test__ = False  # not a pytest test class
    id: int
    outcome: str | None = None
    state: str | None = None
    automatedTestName: str | None = None
    automatedTestStorage: str | None = None
    testCaseTitle: str | None = None
    durationInMs: float | None = None
    errorMessage: str | None = None
    startedDate: datetime | None = None
    completedDate: datetime | None = None
    resultGroupType: str | None = None
    subResults: list[SubResult] = Field(default_factory=list)
    testRun: Ref | None = None
    build: Ref | None = None

    @field_validator("startedDate", "completedDate", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _never_is_none(value)

    @field_validator("subResults", mode="before")
    @classmethod
    def _subs(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []


class ArtifactResource(Lenient):
    type: str | None = None
    downloadUrl: str | None = None
    url: str | None = None


class Artifact(Lenient):
    id: int | None = None
    name: str
    resource: ArtifactResource | None = None


# --- Timeline records validated as a list of dicts ---------------------------------------------
#
# A build has thousands of timeline records; building a `TimelineRecord` per record costs most of
# the normalize step. `TIMELINE_RECORDS` validates a timeline's whole list in one pydantic-core call
# and returns plain dicts with every field. It declares the same fields with the same core
# validators and defaults, but leaves the variants to the reader instead of Python validators: a
# "never" time stays text, `attempt` may be "" or None, `issues` "" or None. It is at least as strict
# as the model: whatever it accepts the model accepts too, with the same values once read as
# `etl.normalize.builds` reads them (one of those variants as the model's value).
# What it rejects (e.g. a PowerShell-serialized `task`) goes through the model one record at a time,
# so a bad record is quarantined with the model's own reason.

#: "Never" (DateTime.MinValue) or "": kept as text by the union below, then read as None.
_NeverText = Annotated[str, StringConstraints(pattern=r"^(?:0001-01-01|$)")]
_Time = Annotated[Union[_NeverText, datetime, None], Field(default=None, union_mode="left_to_right")]  # noqa: UP007
#: Strict and at least 1 so that a value passes as the model would keep it ("" or None: 1); "2", 2.0
#: or 0 go through the model, which reads them.
_Attempt = Annotated[Union[Literal[""], Annotated[StrictInt, Field(ge=1, le=INTEGER_RANGES["int"][1])], None],  # noqa: UP007
                     Field(default=1, union_mode="left_to_right")]
_Str = Annotated[str | None, Field(default=None)]
_Long = Annotated[Long | None, Field(default=None)]
_Int32 = Annotated[Int32 | None, Field(default=None)]


class _PreviousAttemptData(TypedDict, total=False):
    attempt: Required[int]
    timelineId: _Str
    recordId: _Str


class _IssueData(TypedDict, total=False):
    type: _Str
    category: _Str
    message: _Str
    data: Annotated[dict[str, Any] | None, Field(default=None)]


class _TaskRefData(TypedDict, total=False):
    id: _Str
    name: _Str
    version: _Str


class _LogRefData(TypedDict, total=False):
    id: _Long
    url: _Str


class TimelineRecordData(TypedDict, total=False):
    """A timeline record as `TIMELINE_RECORDS` validates it: every field, the variants above unread."""

    id: Required[str]
    parentId: _Str
    type: _Str
    name: _Str
    identifier: _Str
    order: _Long
    state: _Str
    result: _Str
    resultCode: _Str
    startTime: _Time
    finishTime: _Time
    lastModified: _Time
    workerName: _Str
    queueId: _Long
    changeId: _Long
    errorCount: _Int32
    warningCount: _Int32
    attempt: _Attempt
    previousAttempts: Annotated[Union[list[_PreviousAttemptData], Literal[""], None],  # noqa: UP007
                                Field(default=None, union_mode="left_to_right")]
    task: Annotated[_TaskRefData | None, Field(default=None)]
    log: Annotated[_LogRefData | None, Field(default=None)]
    issues: Annotated[Union[list[_IssueData], Literal[""], None],  # noqa: UP007
                      Field(default=None, union_mode="left_to_right")]


#: One core call per timeline: `TIMELINE_RECORDS.validate_python(records)` -> list of dicts.
TIMELINE_RECORDS: TypeAdapter[list[TimelineRecordData]] = TypeAdapter(list[TimelineRecordData])


# --- Test results validated as a list of dicts, as timeline records are (see above) ---------------

_Float = Annotated[float | None, Field(default=None)]
_Children = Annotated[Union[list["_SubResultData"], Literal[""], None],  # noqa: UP007
                      Field(default=None, union_mode="left_to_right")]


class _RefData(TypedDict, total=False):
    id: Annotated[Any, Field(default=None)]  # the model keeps any id, as text; the rows do not read it
    name: _Str


class _SubResultData(TypedDict, total=False):
    id: _Long
    outcome: _Str
    displayName: _Str
    durationInMs: _Float
    errorMessage: _Str
    resultGroupType: _Str
    subResults: _Children


class TestResultData(TypedDict, total=False):
    """A test result as `TEST_RESULTS` validates it: every field, a "never" date as text, sub-results maybe ""/None."""

    id: Required[int]
    outcome: _Str
    state: _Str
    automatedTestName: _Str
    automatedTestStorage: _Str
    testCaseTitle: _Str
    durationInMs: _Float
    errorMessage: _Str
    startedDate: _Time
    completedDate: _Time
    resultGroupType: _Str
    subResults: _Children
    testRun: Annotated[_RefData | None, Field(default=None)]
    build: Annotated[_RefData | None, Field(default=None)]


#: One core call per test run's results: `TEST_RESULTS.validate_python(results)` -> list of dicts.
TEST_RESULTS: TypeAdapter[list[TestResultData]] = TypeAdapter(list[TestResultData])
