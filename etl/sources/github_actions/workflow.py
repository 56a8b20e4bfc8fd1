"""Which action each step of a job runs, read from the workflow file at the run's commit.

The jobs API names steps but does not say what they run, unless GitHub named a `uses:` step by
default (`Run owner/name@ref`). So the workflow file is parsed, and each job's steps are matched
to the API's by display name:

- a job matches the workflow job whose `name:` (expressions `${{ … }}` match anything), or whose
  id, the API job's name equals, a matrix suffix ` (…)` allowed; no match: every job's steps;
- a step's display name is its `name:`, else GitHub's default: `Run <uses>` or `Run <first line of run>`;
  steps are matched in order, so two steps of the same name each find their own;
- `Post <display name>` is the post step of that step's action; GitHub's own steps (`Set up job`,
  `Complete job`, …) run no action.

A step's usage is (TaskName, TaskVersion): `uses: owner/name@ref` → (`owner/name`, `ref`);
`./path` → (`./path`, None); `docker://image:tag` → (`docker://image`, `tag`); `run:` → (`run`, None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from etl.sources.github_actions.mapping import step_action

Usage = tuple[str | None, str | None]
NONE: Usage = (None, None)
#: Steps GitHub adds to every job; they run no action of the workflow.
RUNNER_STEPS = frozenset({"Set up job", "Complete job", "Set up runner", "Initialize containers",
                          "Stop containers", "Build container for action use"})
#: Largest workflow file parsed (GitHub's own limit on a workflow file is far below this).
MAX_WORKFLOW_BYTES = 1_000_000
_EXPR = re.compile(r"\$\{\{.*?\}\}")


def usage_of(uses: str | None, run: str | None = None) -> Usage:
    """(TaskName, TaskVersion) of a step's `uses:` or `run:`."""
    if uses:
        uses = uses.strip()
        if uses.startswith("docker://"):
            image = uses[len("docker://"):]
            if "@" in image:
                name, _, ref = image.partition("@")
            else:
                name, sep, ref = image.rpartition(":")
                if not sep or "/" in ref:
                    name, ref = image, ""
            return f"docker://{name}", ref or None
        if uses.startswith("./"):
            return uses, None
        name, _, ref = uses.partition("@")
        return name, ref or None
    if run is not None:
        return "run", None
    return NONE


def _pattern(text: str) -> re.Pattern[str]:
    """A display name as a regex: `${{ … }}` matches anything."""
    parts = _EXPR.split(text)
    return re.compile("^" + ".+?".join(re.escape(p) for p in parts) + "$", re.S)


@dataclass
class WorkflowStep:
    display: str
    usage: Usage
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.pattern = _pattern(self.display)


@dataclass
class WorkflowJob:
    ident: str
    name: str | None
    steps: list[WorkflowStep]

    def matches(self, job_name: str) -> bool:
        for label in (self.name, self.ident):
            if label and (_pattern(label).match(job_name) or _pattern(label + " (${{ matrix }})").match(job_name)):
                return True
        return False


def _display(step: dict[str, Any]) -> str | None:
    name = step.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    uses, run = step.get("uses"), step.get("run")
    if isinstance(uses, str):
        return f"Run {uses.strip()}"
    if isinstance(run, str) and run.strip():
        return f"Run {run.strip().splitlines()[0]}"
    return None


def parse_workflow(text: str) -> list[WorkflowJob]:
    """The jobs and steps of a workflow file; [] when it cannot be read (steps then keep what their names say)."""
    if len(text) > MAX_WORKFLOW_BYTES:
        return []
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    jobs = doc.get("jobs") if isinstance(doc, dict) else None
    out = []
    for ident, body in (jobs or {}).items() if isinstance(jobs, dict) else ():
        if not isinstance(body, dict):
            continue
        steps = []
        for step in body.get("steps") or []:
            if not isinstance(step, dict):
                continue
            display = _display(step)
            uses, run = step.get("uses"), step.get("run")
            if display is not None:
                steps.append(WorkflowStep(display, usage_of(uses if isinstance(uses, str) else None,
                                                            run if isinstance(run, str) else None)))
        name = body.get("name")
        out.append(WorkflowJob(str(ident), name if isinstance(name, str) else None, steps))
    return out


def _match(steps: list[WorkflowStep], name: str, start: int) -> int | None:
    """Index of the first step at or after *start* whose display name matches, else the first anywhere."""
    for i in range(start, len(steps)):
        if steps[i].pattern.match(name):
            return i
    return next((i for i, s in enumerate(steps) if s.pattern.match(name)), None)


def step_usages(workflow: list[WorkflowJob], job_name: str, step_names: list[tuple[int, str]]) -> dict[int, Usage]:
    """(TaskName, TaskVersion) by step number, for one job's steps [(number, name)]."""
    matching = [j for j in workflow if j.matches(job_name)]
    steps = matching[0].steps if len(matching) == 1 else [s for j in workflow for s in j.steps]
    out: dict[int, Usage] = {}
    cursor = 0
    for number, name in step_names:
        if name in RUNNER_STEPS:
            out[number] = NONE
            continue
        if name.startswith("Post "):
            found = _match(steps, name[len("Post "):], 0)
            usage = steps[found].usage if found is not None else step_action(name)
            out[number] = usage if usage[0] != "run" else NONE
            continue
        found = _match(steps, name, cursor)
        if found is not None:
            out[number] = steps[found].usage
            cursor = found + 1
        else:
            out[number] = step_action(name)
    return out
