"""Pydantic models of the Jenkins JSON the ETL reads: the build list, `wfapi/describe`, `testReport`, artifacts.

Only the fields used are declared; every other field is ignored. Times are epoch milliseconds as
Jenkins sends them; a value out of range is rejected with its field named, so one malformed build
is quarantined alone.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

#: Epoch milliseconds from 2000 to 2100, and durations up to 30 days: anything else is corrupt input.
Millis = Annotated[int, Field(ge=946_684_800_000, lt=4_102_444_800_000)]
Duration = Annotated[int, Field(ge=0, le=30 * 86_400_000)]
Number = Annotated[int, Field(ge=1, lt=2**31)]

#: Cause classes that make a build a retry of an earlier one.
RESTART_CAUSE = "org.jenkinsci.plugins.pipeline.modeldefinition.causes.RestartDeclarativePipelineCause"
REPLAY_CAUSE = "org.jenkinsci.plugins.workflow.cps.replay.ReplayCause"
_ORIGIN = re.compile(r"#(\d+)")


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Cause(Lenient):
    class_: str | None = Field(default=None, alias="_class")
    shortDescription: str | None = None
    originRunNumber: int | None = None
    originalNumber: int | None = None
    upstreamBuild: int | None = None
    userId: str | None = None
    userName: str | None = None


class Action(Lenient):
    causes: list[Cause] = Field(default_factory=list)


class ListedBuild(Lenient):
    """One item of `allBuilds[number,result,timestamp,duration,building,url,actions[causes[*]]]`."""

    number: Number
    result: str | None = None
    timestamp: Millis
    duration: Duration = 0
    building: bool = False
    url: str | None = None
    actions: list[Action | None] = Field(default_factory=list)

    @property
    def completed_ms(self) -> int:
        return self.timestamp + self.duration

    @property
    def causes(self) -> list[Cause]:
        return [c for a in self.actions if a is not None for c in a.causes]

    def retry_of(self) -> tuple[str, int] | None:
        """("restart" | "replay", the origin build number) when this build restarts or replays another."""
        for cause in self.causes:
            kind = _retry_kind(cause.class_)
            if kind is None:
                continue
            number = cause.originRunNumber or cause.originalNumber
            if number is None and cause.shortDescription:
                found = _ORIGIN.search(cause.shortDescription)  # "Restarted from build #12, stage Test", "Replayed #12"
                number = int(found.group(1)) if found else None
            if number is not None and 0 < number < self.number:
                return kind, number
        return None


def _retry_kind(name: str | None) -> str | None:
    if not name:
        return None
    if name == RESTART_CAUSE or name.endswith(".RestartDeclarativePipelineCause"):
        return "restart"
    if name == REPLAY_CAUSE or name.endswith(".ReplayCause"):
        return "replay"
    return None


class WfError(Lenient):
    message: str | None = None
    type: str | None = None


class FlowNode(Lenient):
    """A stage of `wfapi/describe` or a step (stageFlowNode) of a stage's `execution/node/{id}/wfapi/describe`."""

    id: str
    name: str
    status: str | None = None
    startTimeMillis: Millis | None = None
    durationMillis: Duration | None = None
    parameterDescription: str | None = None
    error: WfError | None = None
    parentNodes: list[str] = Field(default_factory=list)


class StageDetail(FlowNode):
    stageFlowNodes: list[FlowNode] = Field(default_factory=list)


class RunDescription(Lenient):
    """`…/<build>/wfapi/describe`."""

    id: str | None = None
    name: str | None = None
    status: str | None = None
    startTimeMillis: Millis | None = None
    durationMillis: Duration | None = None
    stages: list[FlowNode] = Field(default_factory=list)


class Case(Lenient):
    className: str | None = None
    name: str
    status: str | None = None
    duration: Annotated[float, Field(ge=0, le=30 * 86_400)] | None = None
    errorDetails: str | None = None
    errorStackTrace: str | None = None
    skipped: bool = False


class Suite(Lenient):
    name: str | None = None
    duration: Annotated[float, Field(ge=0, le=30 * 86_400)] | None = None
    timestamp: str | None = None
    cases: list[Case] = Field(default_factory=list)


class TestReport(Lenient):
    """`…/<build>/testReport/api/json`."""

    __test__ = False  # not a pytest test class
    duration: Annotated[float, Field(ge=0, le=30 * 86_400)] | None = None
    failCount: int | None = None
    passCount: int | None = None
    skipCount: int | None = None
    suites: list[Suite] = Field(default_factory=list)


class Artifact(Lenient):
    fileName: str
    relativePath: str


def as_listed(raw: Any) -> ListedBuild:
    """A build-list item validated; raises pydantic's ValidationError naming the field."""
    return ListedBuild.model_validate(raw)
