"""Which action a step runs: read from the workflow file and matched to the jobs API's steps by name."""

from __future__ import annotations

import pytest

from etl.sources.github_actions.workflow import parse_workflow, step_usages, usage_of

WORKFLOW = """
name: ci
on: push
jobs:
  build:
    name: Build ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, windows-latest]
    steps:
      - uses: actions/checkout@v4
      - name: Set up Node
        uses: actions/setup-node@v3
      - run: |
          npm ci
          npm run build
      - name: Test
        run: npm test
      - name: Test
        uses: ./.github/actions/report
      - uses: docker://alpine:3.20
  lint:
    steps:
      - uses: github/super-linter@main
"""


@pytest.mark.parametrize(("uses", "run", "expected"), [
    ("actions/checkout@v4", None, ("actions/checkout", "v4")),
    ("actions/checkout@8e5e7e5ab8b370d6c329ec480221332ada57f0ab", None,
     ("actions/checkout", "8e5e7e5ab8b370d6c329ec480221332ada57f0ab")),
    ("github/codeql-action/init@v3", None, ("github/codeql-action/init", "v3")),
    ("./.github/actions/setup", None, ("./.github/actions/setup", None)),
    ("docker://alpine:3.20", None, ("docker://alpine", "3.20")),
    ("docker://ghcr.io/o/img@sha256:abc", None, ("docker://ghcr.io/o/img", "sha256:abc")),
    ("docker://localhost:5000/img", None, ("docker://localhost:5000/img", None)),
    (None, "echo hi", ("run", None)),
])
def test_usage_of_a_step(uses, run, expected) -> None:
    assert usage_of(uses, run) == expected


def test_steps_match_by_name_default_names_post_steps_and_runner_steps() -> None:
    steps = [(1, "Set up job"), (2, "Run actions/checkout@v4"), (3, "Set up Node"), (4, "Run npm ci"),
             (5, "Test"), (6, "Test"), (7, "Run docker://alpine:3.20"), (8, "Post Run actions/checkout@v4"),
             (9, "Complete job")]
    assert step_usages(parse_workflow(WORKFLOW), "Build windows-latest", steps) == {
        1: (None, None), 2: ("actions/checkout", "v4"), 3: ("actions/setup-node", "v3"), 4: ("run", None),
        5: ("run", None), 6: ("./.github/actions/report", None), 7: ("docker://alpine", "3.20"),
        8: ("actions/checkout", "v4"), 9: (None, None)}


def test_a_job_without_a_name_matches_by_its_id() -> None:
    assert step_usages(parse_workflow(WORKFLOW), "lint", [(2, "Run github/super-linter@main")]) == {
        2: ("github/super-linter", "main")}


def test_a_step_named_by_its_author_but_absent_from_the_file_keeps_what_its_name_says() -> None:
    usages = step_usages(parse_workflow(WORKFLOW), "Build ubuntu-latest",
                         [(3, "Deploy"), (4, "Run octo/deploy@v1")])
    assert usages == {3: (None, None), 4: ("octo/deploy", "v1")}


def test_an_unreadable_workflow_file_gives_no_jobs() -> None:
    assert parse_workflow("jobs: [unclosed") == []
    assert parse_workflow("just text") == []
