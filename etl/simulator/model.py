"""The simulated Azure DevOps organization: a deterministic plan of builds, and its ground truth.

`SimulatedOrganization(seed, days, builds_per_day, end)` plans every build once (compact specs:
branch, commit, stages, job attempts, planted issues, test outcomes, metrics figures) from a single
`random.Random(seed)`; bodies (builds, timelines, test runs and results, artifact zips) are rendered
on demand from those specs (`etl.simulator.render`), so a big organization (thousands of records per build) costs memory
only for what is being served. Nothing reads the clock: every timestamp is an offset from `end`.

The ground truth (`ground_truth()`) is computed from the same specs the renderers expand, and is
checked against an independent walk of the HTTP API in the tests.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from etl.simulator import catalog as cat
from etl.simulator.catalog import Definition, IssueSpec, Secrets, guid, hexdigest
from etl.simulator.render import AdoBodies
from etl.simulator.specs import (
    MAX_ATTEMPTS,
    BuildPlan,
    JobPlan,
    JobRun,
    MetricsPlan,
    StagePlan,
    TestCase,
    TestRunPlan,
    iso,
)

__all__ = ["BuildPlan", "SimulatedOrganization", "iso", "today_utc"]

# Failure mix of builds that start and are not cancelled (test failures come from test outcomes).
FAILURE_WEIGHTS = {
    "network": 14, "dependency": 12, "compilation": 16, "timeout": 8, "infrastructure": 12, "resource": 6,
    "permission": 6, "security": 5, "packaging": 5, "configuration": 6, "unknown": 10,
    "architecture": 4,
}
# Probability that a failed build's failed jobs are rerun, and that a rerun fails again.
RETRY_PROBABILITY = {"network": 0.6, "infrastructure": 0.7, "timeout": 0.5, "resource": 0.4, "test": 0.5,
                     "unknown": 0.3, "dependency": 0.3}
REFAIL_PROBABILITY = {"network": 0.2, "infrastructure": 0.15, "timeout": 0.3, "resource": 0.3, "unknown": 0.4,
                      "dependency": 0.6}
REASONS = (("individualCI", 0.33), ("batchedCI", 0.10), ("pullRequest", 0.40), ("schedule", 0.09), ("manual", 0.08))
RELEASE_BRANCHES = ("refs/heads/release/8.0", "refs/heads/release/9.0")

# Flake detection thresholds the ground truth's `flaky_tests` is guaranteed to meet.
FLAKY_MIN_RESULTS = 30
FLAKY_MIN_COMMITS = 2
FLAKY_MIN_RATE = 0.015


def _evidence(results: list[tuple[str, str]]) -> dict[str, Any]:
    """Flake evidence from (commit, outcome code) pairs: P passed, R passed on rerun, F/RF failed.

    A flaky commit is one where the test passed on rerun, or both failed and passed.
    """
    per_commit: dict[str, set[str]] = defaultdict(set)
    for commit, code in results:
        per_commit[commit].add(code)
    failures = sum(1 for _, code in results if code in ("F", "RF"))
    reruns = sum(1 for _, code in results if code == "R")
    flaky_commits = sum(1 for codes in per_commit.values() if "R" in codes or (codes & {"F", "RF"} and codes & {"P", "R"}))
    n = len(results)
    return {"results": n, "failures": failures, "passed_on_rerun": reruns, "flaky_commits": flaky_commits,
            "flake_rate": round((failures + reruns) / n, 4) if n else 0.0}


def count_metrics_document(counts: dict[str, int], doc: dict[str, Any]) -> None:
    """Add the rows one metrics document loads to *counts* (the ground truth of every simulated API).

    A `metrics.json` document gives one BuildMetrics row, a BuildStages row per stage, and a sample per
    memory sample, per stage and six fixed figures; a flat telemetry document gives one sample per number.
    """
    counts["BuildMetrics"] += 1
    if "build_session" in doc:
        stages = len(doc["build_metrics"]["build_stages"])
        counts["BuildStages"] += stages
        counts["MetricSamples"] += len(doc["memory_metrics"]["samples"]) + 6 + stages
    else:
        counts["MetricSamples"] += sum(1 for v in doc["telemetry"].values()
                                       if isinstance(v, int | float) and not isinstance(v, bool))


def today_utc() -> datetime:
    """Today 00:00 UTC: the default `end` anchor (the only clock read of the simulator)."""
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


# --- the organization ----------------------------------------------------------------------------


class SimulatedOrganization(AdoBodies):
    """A deterministic Azure DevOps organization: 2 projects, 6 definitions, `days × builds_per_day` builds.

    `records_per_job` adds that many script steps to every job (big timelines for benchmarks);
    `tests_per_definition` sizes the test suites. `large_runs` test runs (None: one per 100
    builds, at most 3) hold `large_run_results` results each: the rows of one data-driven test
    added to the suite, so a few runs page past the service's `$top` caps without making every
    run big.
    """

    def __init__(
        self,
        seed: int = 7,
        days: int = 28,
        builds_per_day: int = 12,
        end: datetime | None = None,
        *,
        organization: str = "simulated",
        records_per_job: int = 0,
        tests_per_definition: int = 40,
        large_runs: int | None = None,
        large_run_results: int = 1250,
    ) -> None:
        if days < 1 or builds_per_day < 1:
            raise ValueError("days and builds_per_day must be at least 1")
        self.seed = seed
        self.days = days
        self.builds_per_day = builds_per_day
        end = end or today_utc()
        self.end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
        self.start = self.end - timedelta(days=days)
        self.organization = organization
        self.records_per_job = records_per_job
        self.tests_per_definition = max(tests_per_definition, 1)
        self.secrets = Secrets()
        self.project_ids = {name: guid(seed, "project", name) for name in cat.PROJECTS}
        self.definitions = {d.id: (project, d) for project, defs in cat.PROJECTS.items() for d in defs}
        self._rng = random.Random(seed)
        self._unplanted = list(cat.SECRET_KINDS)
        self._unused_categories = list(FAILURE_WEIGHTS)
        self._tasks = {
            (d.id, kind): cat.job_tasks(d, kind, records_per_job)
            for _, d in self.definitions.values()
            for kind in ("build", "test", "publish")
        }
        self.tests = {d.id: self._plan_tests(d) for _, d in self.definitions.values()}
        self.builds: list[BuildPlan] = self._plan_builds()
        self._assign_ids()
        self._ensure_flaky_signal()
        self.regressions = self._plant_regressions()
        self._by_id = {b.id: b for b in self.builds}
        self._runs = {run.test_run.id: (b, job, run) for b in self.builds for job in b.jobs() for run in job.runs
                      if run.test_run is not None}
        self._plan_large_runs(large_runs, large_run_results)
        self._ground_truth: dict[str, Any] | None = None

    # --- planning: tests ---------------------------------------------------------------------

    def _plan_tests(self, d: Definition) -> list[TestCase]:
        rng = random.Random(f"{self.seed}:tests:{d.id}")
        template, storage_t = cat.TEST_CLASSES[d.language]
        n = self.tests_per_definition
        n_flaky = 3 if n >= 12 else (1 if n >= 4 else 0)
        n_broken = 1 if n >= 8 else 0
        n_ignored = 2 if n >= 20 else 0
        names: list[str] = []
        seen = set()
        while len(names) < n:
            area = rng.choice(cat.TEST_AREAS)
            cls = template.format(area=area, cls=f"{area}{rng.choice(('Client', 'Parser', 'Cache', 'Pool'))}Tests")
            method = f"{rng.choice(cat.TEST_VERBS)}{rng.choice(cat.TEST_OBJECTS)}"
            name = f"{d.repository}.{cls}.{method}" if d.language != "node" else f"{d.repository} {cls} {method}"
            if name not in seen:
                seen.add(name)
                names.append(name)
        tests = []
        span = self.end - self.start
        for i, name in enumerate(names):
            area = next((a for a in cat.TEST_AREAS if a in name), "Http")
            storage = storage_t.format(area=area.lower() if d.language != "dotnet" else area)
            if i < n_flaky:
                tests.append(TestCase(name, storage, "flaky", flake_rate=rng.uniform(0.03, 0.07)))
            elif i < n_flaky + n_broken:
                begin = self.start + span * rng.uniform(0.3, 0.5)
                tests.append(TestCase(name, storage, "broken", broken_from=begin,
                                      broken_until=begin + span * rng.uniform(0.08, 0.14)))
            elif i < n_flaky + n_broken + n_ignored:
                tests.append(TestCase(name, storage, "ignored"))
            else:
                tests.append(TestCase(name, storage, "stable"))
        return tests

    # --- planning: builds --------------------------------------------------------------------

    def _plan_builds(self) -> list[BuildPlan]:
        rng = self._rng
        total = self.days * self.builds_per_day
        window = (self.end - self.start).total_seconds()
        # Finish times are drawn first (unique, microsecond resolution) so every build finishes inside
        # the window; queue times follow from each build's simulated length.
        offsets: set[int] = set()
        while len(offsets) < total:
            offsets.add(rng.randrange(60_000_000, int(window * 1_000_000) - 60_000_000))
        finishes = [self.start + timedelta(microseconds=o) for o in sorted(offsets)]
        defs = [(p, d) for p, ds in cat.PROJECTS.items() for d in ds]
        weights = [d.weight for _, d in defs]
        heads: dict[tuple[int, str], tuple[str, datetime]] = {}
        prs: dict[int, list[dict[str, Any]]] = defaultdict(list)
        pr_counter = {d.id: 1000 + d.id * 100 for _, d in defs}
        builds = []
        # Even a tiny organization shows every shape the ETL must handle at least once.
        shapes: tuple[str, ...] = ("retry-patch", "retry-full", "config", "cancel_early", "cancel")
        shapes = shapes if total >= 10 else shapes[:3] if total >= 6 else ()
        forced = dict(zip(rng.sample(range(total), len(shapes)), shapes, strict=True))
        for n, finish in enumerate(finishes):
            project, d = rng.choices(defs, weights)[0]
            b = BuildPlan(project, d, rng.getrandbits(63), finish, "normal")
            self._plan_source(b, rng, heads, prs, pr_counter)
            r = rng.random()
            if r < 0.025:
                b.kind = "config"
            elif r < 0.035:
                b.kind = "cancel_early"
            elif r < 0.055:
                b.kind = "cancel"
            shape = forced.get(n, "")
            if shape.startswith("retry"):
                b.kind, b.forced = "normal", shape
            elif shape:
                b.kind = shape
            self._simulate(b)
            builds.append(b)
        # One build per project still running at `end` (status filters must exclude it).
        for project, ds in cat.PROJECTS.items():
            d = ds[0]
            b = BuildPlan(project, d, rng.getrandbits(63), self.end, "inprogress", reason="individualCI",
                          commit=hexdigest(self.seed, "inprogress", project), person=rng.choice(cat.PEOPLE))
            b.queue = self.end - timedelta(minutes=25, microseconds=rng.randrange(1_000_000))
            b.plan_id = b.timeline_id = guid(b.seed, "plan")
            b.start_offset = 70.0
            b.stages = self._stage_plans(b)
            builds.append(b)
        return builds

    def _plan_source(self, b: BuildPlan, rng: random.Random, heads: dict, prs: dict, pr_counter: dict) -> None:
        d = b.definition
        b.reason = rng.choices([r for r, _ in REASONS], [w for _, w in REASONS])[0]
        b.person = rng.choice(cat.PEOPLE)
        if b.reason == "pullRequest":
            active = prs[d.id]
            if not active or rng.random() < 0.3:
                pr_counter[d.id] += rng.randint(1, 3)
                target = "refs/heads/main" if rng.random() < 0.85 else rng.choice(RELEASE_BRANCHES)
                active.append({"number": pr_counter[d.id], "target": target, "person": rng.choice(cat.PEOPLE),
                               "source": f"refs/heads/dev/{rng.choice(cat.USERS)}/{rng.choice(cat.TEST_OBJECTS).lower()}",
                               "commit": None, "birth": None, "style": rng.choice(("both", "both", "parameters", "triggerInfo"))})
                if len(active) > 6:
                    active.pop(0)
            pr = rng.choice(active)
            if pr["commit"] is None or rng.random() < 0.6:
                pr["commit"] = hexdigest(self.seed, d.id, "pr", pr["number"], rng.random())
                pr["birth"] = b.finish_target
            b.pr_number, b.target_branch, b.pr_source, b.pr_style = pr["number"], pr["target"], pr["source"], pr["style"]
            b.source_branch = f"refs/pull/{pr['number']}/merge"
            b.commit, b.commit_birth, b.person = pr["commit"], pr["birth"], pr["person"]
            return
        if b.reason in ("individualCI", "batchedCI", "manual"):
            b.source_branch = "refs/heads/main" if rng.random() < 0.85 else rng.choice(RELEASE_BRANCHES)
        key = (d.id, b.source_branch)
        advance = b.reason in ("individualCI", "batchedCI") and rng.random() < 0.7
        if key not in heads or advance:
            heads[key] = (hexdigest(self.seed, d.id, b.source_branch, rng.random()), b.finish_target)
        b.commit, b.commit_birth = heads[key]
        if b.reason == "schedule":
            b.person = cat.SERVICE_IDENTITY

    def _stage_plans(self, b: BuildPlan) -> list[StagePlan]:
        d = b.definition
        stages = []
        for order, name in enumerate(d.stages, start=1):
            jobs = []
            for t in d.jobs():
                if t.stage != name:
                    continue
                ident = f"{name}.{t.name.replace(' ', '_')}"
                jobs.append(JobPlan(t, ident, guid(b.seed, "phase", ident), self._tasks[(d.id, t.kind)]))
            checkpoint = guid(b.seed, "checkpoint", name) if (d.checkpoint and name == "Publish") else None
            stages.append(StagePlan(name, guid(b.seed, "stage", name), order, jobs, checkpoint))
        return stages

    def _simulate(self, b: BuildPlan) -> None:
        """Run the build: rounds of attempts, planted failures, test outcomes, retries; offsets in seconds."""
        rng = random.Random(b.seed)
        b.plan_id = guid(b.seed, "plan")
        b.timeline_id = b.plan_id
        b.stages = self._stage_plans(b)
        if rng.random() < 0.03:
            b.validation.append(("warning", rng.choice(cat.VALIDATION_WARNINGS), None))
        if b.kind in ("config", "cancel_early"):
            if b.kind == "config":
                message = self._plant(cat.validation_error(rng), rng)
                b.validation.append(("error", message, "configuration"))
                b.result, b.failure_category = "failed", "configuration"
            else:
                b.result = "canceled"
            b.finish_offset = rng.uniform(3, 90)
            b.stages = []
            b.queue = b.finish_target - timedelta(seconds=b.finish_offset)
            return
        b.start_offset = rng.uniform(4, 240)
        jobs = b.jobs()
        fail_job: JobPlan | None = None
        category: str | None = None
        fail_task_kind: str | None = None
        cancel_job: JobPlan | None = None
        if b.kind == "cancel":
            # A job of the first two stages: those always start in a build that is not failing otherwise.
            cancel_job = rng.choice([j for stage in b.stages[:2] for j in stage.jobs])
        elif b.forced:
            category, fail_task_kind = "infrastructure", None
            fail_job = next(j for j in jobs if j.template.kind == "build")
        elif rng.random() < 0.16:
            category = rng.choices(list(FAILURE_WEIGHTS), list(FAILURE_WEIGHTS.values()))[0]
            if self._unused_categories:  # every category shows up, even in a short window
                category = self._unused_categories.pop(0)
            kinds = {j.template.kind for j in jobs}
            spot = rng.choice([s for s in cat.SPOTS[category] if s.job_kind in kinds])
            fail_job = rng.choice([j for j in jobs if j.template.kind == spot.job_kind])
            fail_task_kind = spot.task_kind
        rounds = 0
        t = b.start_offset
        while True:
            rounds += 1
            round_end = t
            stage_ok = True
            for stage in b.stages:
                if not stage_ok:
                    break
                to_run = [j for j in stage.jobs if not j.runs or (rounds > 1 and j.runs[-1].result == "failed")]
                stage_end = t
                for job in to_run:
                    attempt = len(job.runs) + 1
                    failure = None
                    if job is fail_job and (attempt == 1 or (
                            not b.forced and rng.random() < REFAIL_PROBABILITY.get(category, 0.9))):
                        failure = (category, fail_task_kind)
                    if job is cancel_job and attempt == 1:
                        failure = ("cancelled", None)
                    run = self._run_job(b, job, attempt, rounds, t + rng.uniform(1, 30), failure, rng)
                    job.runs.append(run)
                    stage_end = max(stage_end, run.finish)
                    if failure and failure[0] == "cancelled":
                        break
                runs = [j.runs[-1] for j in stage.jobs if j.runs]
                if any(r.result in ("failed", "canceled") for r in runs) or len(runs) < len(stage.jobs):
                    stage_ok = False
                t = stage_end + rng.uniform(2, 20)
                round_end = max(round_end, stage_end)
            failed = [j.runs[-1] for j in jobs if j.runs and j.runs[-1].result == "failed"]
            canceled = any(j.runs and j.runs[-1].result == "canceled" for j in jobs)
            if canceled or not failed or rounds >= MAX_ATTEMPTS:
                break
            why = failed[0].category or "unknown"
            if not (b.forced and rounds == 1) and rng.random() >= RETRY_PROBABILITY.get(why, 0.05):
                break
            t = round_end + rng.uniform(600, 5400)
        b.rounds = rounds
        b.round_timelines = [(guid(b.seed, "timeline", r), "patch" if rng.random() < 0.4 else "full")
                             for r in range(1, rounds)]
        if b.forced:
            b.round_timelines[0] = (b.round_timelines[0][0], b.forced.removeprefix("retry-"))
        b.finish_offset = round_end + rng.uniform(3, 30)
        b.queue = b.finish_target - timedelta(seconds=b.finish_offset)
        latest = [j.runs[-1] for j in jobs if j.runs]
        if any(r.result == "canceled" for r in latest):
            b.result, b.failure_category = "canceled", "cancelled"
        elif any(r.result == "failed" for r in latest):
            b.result = "failed"
            b.failure_category = next(r.category for r in latest if r.result == "failed")
        elif any(r.result == "succeededWithIssues" for r in latest):
            b.result = "partiallySucceeded"
        else:
            b.result = "succeeded"
        if b.kind == "normal" and rng.random() < 0.92:
            b.metrics = self._plan_metrics(b, rng)

    def _run_job(self, b: BuildPlan, job: JobPlan, attempt: int, round_: int, start: float,
                 failure: tuple[str | None, str | None] | None, rng: random.Random) -> JobRun:
        d, t = b.definition, job.template
        worker_t = cat.POOLS[t.platform][1]
        worker = worker_t.format(n=rng.randint(1, 48))
        record_id = guid(b.seed, "job", job.identifier, attempt)
        run = JobRun(attempt, round_, record_id, rng.getrandbits(63), start, start, "succeeded", len(job.tasks),
                     worker=worker)
        kinds = [task.kind for task in job.tasks]
        if failure is not None:
            category, task_kind = failure
            run.category = category
            if category == "cancelled":
                # Filler steps are left out of the choice so a big organization fails like the small one.
                core = [i for i, k in enumerate(kinds) if k != "script"]
                run.fail_index = rng.choice(core[1:-2] or core)
                run.fail_result = run.result = "canceled"
                run.issues[run.fail_index] = self._plant_all(cat.failure_issues(
                    "cancelled", rng, platform=t.platform, lang=d.language, agent=worker, job_name=t.name,
                    task_name=job.tasks[run.fail_index].name), rng, t.platform)
            elif task_kind is None:
                issues = cat.failure_issues(category, rng, platform=t.platform, lang=d.language, agent=worker,
                                            job_name=t.name, task_name="")
                run.issues[-1] = self._plant_all(issues, rng, t.platform)
                run.result = "failed"
                if "parallelism" in issues[0].message or "no longer available" in issues[0].message:
                    run.n_tasks = 0  # the job never got an agent
                else:
                    work = [i for i, k in enumerate(kinds) if k in ("build", "test", "restore")]
                    run.fail_index = rng.choice(work)
                    run.fail_result = "canceled"
            else:
                index = kinds.index(task_kind) if task_kind in kinds else kinds.index("init") + 1
                run.fail_index = index
                run.result = "failed"
                run.issues[index] = self._plant_all(cat.failure_issues(
                    category, rng, platform=t.platform, lang=d.language, agent=worker, job_name=t.name,
                    task_name=job.tasks[index].name), rng, t.platform)
        if t.kind == "test" and run.n_tasks and (run.fail_index is None or run.fail_index > kinds.index("test")):
            test_run = self._run_tests(b, rng)
            run.test_run = test_run
            failed = sum(1 for code, _ in test_run.outcomes.values() if code in ("F", "RF"))
            if failed and run.fail_index is None:
                index = kinds.index("test")
                run.fail_index, run.result, run.category = index, "failed", "test"
                total = len(self.tests[d.id])
                msg = (f"##[error]Test Run Failed. Total tests: {total}, Failed: {failed}. {failed} test(s) failed, "
                       f"see the Tests tab of build {{build}} (NETCORE_ENGINEERING_TELEMETRY=Test)")
                run.issues[index] = [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": cat.log_line(rng)},
                                               "test")]
        if run.result == "succeeded" and rng.random() < 0.03 and "artifact" in kinds:
            run.swi_index = kinds.index("artifact")
            run.result = "succeededWithIssues"
            run.issues.setdefault(run.swi_index, []).append(IssueSpec(
                "warning", "Upload of symbols to https://symweb.contoso.com failed; continuing (continueOnError).",
                {"type": "warning"}, None))
        if rng.random() < 0.2 and run.n_tasks:
            spot = next((i for i, k in enumerate(kinds) if k in ("build", "restore", "sign")), 0)
            if run.fail_index is None or spot < run.fail_index:
                run.issues.setdefault(spot, []).insert(0, cat.warning_issue(rng, platform=t.platform, lang=d.language))
        run.durations = self._durations(job, run, failure)
        run.finish = start + sum(run.durations) + rng.uniform(1, 5)
        if run.test_run is not None:
            test_index = kinds.index("test")
            run.test_run.started = start + sum(run.durations[:test_index])
            run.test_run.completed = run.test_run.started + run.durations[test_index]
        return run

    def _durations(self, job: JobPlan, run: JobRun, failure: tuple[str | None, str | None] | None) -> list[float]:
        """Step durations (seconds); skipped steps take none. Deterministic from the attempt's seed."""
        rng = random.Random(run.seed)
        out = []
        for i, task in enumerate(job.tasks[: run.n_tasks]):
            lo, hi = cat.TASK_SECONDS[task.kind]
            if run.fail_index is not None and i > run.fail_index and not task.always:
                out.append(0.0)
            else:
                out.append(round(rng.uniform(lo, hi), 3))
        if failure and failure[0] == "timeout" and run.fail_index is not None:
            limit = 3600.0 * rng.choice((1, 1.5, 2))
            out[run.fail_index] = max(limit - sum(out[: run.fail_index]), 60.0)
        return out

    def _run_tests(self, b: BuildPlan, rng: random.Random) -> TestRunPlan:
        outcomes: dict[int, tuple[str, str]] = {}
        platform = b.definition.platforms[0]
        for i, test in enumerate(self.tests[b.definition.id]):
            if test.kind == "flaky" and rng.random() < test.flake_rate:
                if rng.random() < 0.5:
                    outcomes[i] = ("R", cat.flaky_error(rng, self.secrets, plant=self._plant_test(rng)))
                else:
                    code = "RF" if rng.random() < 0.3 else "F"
                    outcomes[i] = (code, cat.flaky_error(rng, self.secrets, plant=self._plant_test(rng)))
            elif (test.kind == "broken" and b.commit_birth is not None
                  and test.broken_from <= b.commit_birth < test.broken_until):
                outcomes[i] = ("RF" if rng.random() < 0.3 else "F", cat.broken_error(rng, platform))
        return TestRunPlan(outcomes, 0.0, 0.0)

    def _plant_test(self, rng: random.Random) -> bool:
        return rng.random() < 0.1

    def _plant(self, message: str, rng: random.Random, platform: str | None = None) -> str:
        """Append a secret to some messages; every kind is planted at least once, early."""
        fitting = [k for k in self._unplanted if cat.secret_fits(k, platform)]
        if fitting:
            kind = fitting[0]
            self._unplanted.remove(kind)
        elif rng.random() < 0.12:
            kind = rng.choice([k for k in cat.SECRET_KINDS if cat.secret_fits(k, platform)])
        else:
            return message
        return message + cat.secret_fragment(kind, rng, self.secrets)

    def _plant_all(self, issues: list[IssueSpec], rng: random.Random, platform: str) -> list[IssueSpec]:
        return [IssueSpec(i.type, self._plant(i.message, rng, platform), i.data, i.category, i.issue_category)
                for i in issues]

    # --- planning: metrics -------------------------------------------------------------------

    def _plan_metrics(self, b: BuildPlan, rng: random.Random) -> MetricsPlan:
        d = b.definition
        platform = rng.choice(d.platforms)
        base = 900 + (d.id * 137 % 1700) + {"linux": 0, "windows": 420, "macos": 260}[platform]
        memory = 2200 + (d.id * 311 % 3000) + {"linux": 0, "windows": 900, "macos": 500}[platform]
        cv = 0.05 + (d.id % 4) * 0.01
        duration = base * max(0.7, rng.gauss(1.0, cv))
        peak = memory * max(0.7, rng.gauss(1.0, cv))
        if rng.random() < 0.01:  # the odd one-off outlier, not a change
            duration *= 1.35
        stages = [("restore", "success"), ("compile", "success"), ("test", "success"), ("package", "success")]
        failure = None
        if b.result in ("failed", "canceled"):
            stage_for = {"test": "test", "compilation": "compile", "network": "restore", "dependency": "restore",
                         "packaging": "package", "security": "package", "permission": "package",
                         "architecture": "compile"}
            failed_stage = stage_for.get(b.failure_category or "", "compile")
            names = [s for s, _ in stages]
            k = names.index(failed_stage)
            stages = [(s, "success" if i < k else "failed" if i == k else "skipped") for i, (s, _) in enumerate(stages)]
            reason = next((iss.message for j in b.jobs() for r in j.runs for lst in r.issues.values() for iss in lst
                           if iss.type == "error"), "build failed")
            failure = (b.failure_category or "unknown", failed_stage, reason)
        summary = d.summary and rng.random() < 0.9
        only_summary = summary and rng.random() < 0.05
        return MetricsPlan(platform, b.finish_offset - rng.uniform(20, 90), round(duration, 3), round(peak, 2),
                           rng.getrandbits(63), metrics_json=not only_summary, summary_json=summary,
                           n_samples=rng.randint(6, 24), stages=tuple(stages), failure=failure)

    # --- ids, flakiness, regressions ---------------------------------------------------------

    def _assign_ids(self) -> None:
        rng = random.Random(self.seed ^ 0x5EED)
        self.builds.sort(key=lambda b: (b.queue, b.seed))
        next_id = 1000 + rng.randrange(9000)
        per_day: dict[tuple[int, str], int] = defaultdict(int)
        for b in self.builds:
            b.id = next_id
            next_id += rng.randint(1, 4)
            day = b.queue.strftime("%Y%m%d")
            per_day[(b.definition.id, day)] += 1
            b.number = f"{day}.{per_day[(b.definition.id, day)]}"
        runs = [(b.at(r.test_run.started), b.id, r) for b in self.builds for j in b.jobs() for r in j.runs
                if r.test_run is not None]
        runs.sort(key=lambda x: (x[0], x[1], x[2].record_id))
        run_id = 200000 + rng.randrange(100000)
        for _, _, r in runs:
            r.test_run.id = run_id
            run_id += rng.randint(1, 3)

    def _plan_large_runs(self, large_runs: int | None, results: int) -> None:
        """Grow a few test runs (nightly ones first) to *results* results with data-driven cases."""
        completed = [b for b in self.builds if b.status == "completed"]
        n = min(3, len(completed) // 100) if large_runs is None else large_runs
        if n <= 0:
            return
        rng = random.Random(self.seed ^ 0xB16)
        runs = sorted(self._runs.items())
        nightly = [rid for rid, (b, _, _) in runs if b.reason == "schedule"]
        others = [rid for rid, _ in runs if rid not in set(nightly)]
        chosen = rng.sample(nightly, min(n, len(nightly)))
        chosen += rng.sample(others, min(n - len(chosen), len(others)))
        for rid in chosen:
            b, _, run = self._runs[rid]
            run.test_run.extra = max(results - len(self.tests[b.definition.id]), 0)

    def large_runs(self) -> dict[int, int]:
        """Test run id -> results, of the runs grown past the definition's suite."""
        return {rid: len(self.tests[b.definition.id]) + run.test_run.extra
                for rid, (b, _, run) in sorted(self._runs.items()) if run.test_run.extra}

    @staticmethod
    def test_runs_of(b: BuildPlan) -> list[tuple[JobPlan, JobRun]]:
        """A build's test runs with the job attempt each belongs to."""
        return b.test_runs()

    def flaky_evidence(self) -> dict[str, dict[str, Any]]:
        """Per designed-flaky test: results, failures, passes on rerun, flaky commits, flake rate."""
        evidence: dict[str, dict[str, Any]] = {}
        for d_id, tests in self.tests.items():
            runs = [(b.commit, run.test_run) for b in self.builds if b.definition.id == d_id
                    for _, run in self.test_runs_of(b)]
            for i, test in enumerate(tests):
                if test.kind == "flaky":
                    evidence[test.name] = _evidence([(c, tr.outcomes.get(i, ("P", ""))[0]) for c, tr in runs])
        return evidence

    def _ensure_flaky_signal(self) -> None:
        """Make every flaky test with enough results clear the detection thresholds (passes on rerun)."""
        rng = random.Random(self.seed ^ 0xF1A4E)
        for d_id, tests in self.tests.items():
            runs = [(b.commit, run.test_run) for b in self.builds if b.definition.id == d_id
                    for _, run in self.test_runs_of(b)]
            for i, test in enumerate(tests):
                if test.kind != "flaky":
                    continue
                candidates = [(commit, tr) for commit, tr in runs if i not in tr.outcomes]
                rng.shuffle(candidates)
                while candidates:
                    ev = _evidence([(commit, tr.outcomes.get(i, ("P", ""))[0]) for commit, tr in runs])
                    if ev["results"] < FLAKY_MIN_RESULTS or (
                            ev["flaky_commits"] >= FLAKY_MIN_COMMITS and ev["flake_rate"] >= FLAKY_MIN_RATE):
                        break
                    _, tr = candidates.pop()
                    tr.outcomes[i] = ("R", cat.flaky_error(rng, self.secrets, plant=False))

    def _plant_regressions(self) -> list[dict[str, Any]]:
        rng = random.Random(self.seed ^ 0x12E6)
        series: dict[tuple[str, int, str], list[BuildPlan]] = defaultdict(list)
        for b in self.builds:
            if b.metrics is not None and b.metrics.metrics_json:
                series[(b.project, b.definition.id, b.metrics.platform)].append(b)
        for builds in series.values():
            builds.sort(key=lambda b: (b.at(b.metrics.end_offset), b.id))
        eligible = [(key, metric) for key, builds in sorted(series.items()) if len(builds) >= 20
                    for metric in ("duration_seconds", "peak_memory_mb")]
        rng.shuffle(eligible)
        chosen = eligible[: max(1, round(len(eligible) * 0.2))] if eligible else []
        planted = []
        for (project, d_id, platform), metric in sorted(chosen):
            builds = series[(project, d_id, platform)]
            index = rng.randint(max(8, len(builds) * 3 // 10), min(len(builds) - 8, len(builds) * 3 // 4))
            change = round(rng.uniform(25, 60), 1)
            for b in builds[index:]:
                if metric == "duration_seconds":
                    b.metrics.duration_factor = 1 + change / 100
                else:
                    b.metrics.memory_factor = 1 + change / 100
            d = self.definitions[d_id][1]
            planted.append({"project": project, "definition": d.full_name, "definition_id": d_id, "metric": metric,
                            "platform": platform, "build_id": builds[index].id, "index": index,
                            "change_percent": change, "series_length": len(builds)})
        return planted

    # --- lookups -----------------------------------------------------------------------------

    @property
    def projects(self) -> list[str]:
        return list(cat.PROJECTS)

    def project_name(self, name_or_id: str) -> str | None:
        """The project a URL segment names (by name, case-insensitively, or by id)."""
        for name, pid in self.project_ids.items():
            if name_or_id.lower() in (name.lower(), pid):
                return name
        return None

    def build_plan(self, project: str, build_id: int) -> BuildPlan | None:
        b = self._by_id.get(build_id)
        return b if b is not None and b.project == project else None

    def list_builds(self, project: str) -> list[BuildPlan]:
        return [b for b in self.builds if b.project == project]

    # --- ground truth ------------------------------------------------------------------------

    def ground_truth(self) -> dict[str, Any]:
        """Expected table counts, planted failures, flaky/broken tests, regressions and secrets."""
        if self._ground_truth is None:
            self._ground_truth = self._compute_ground_truth()
        return self._ground_truth

    def _compute_ground_truth(self) -> dict[str, Any]:
        counts = dict.fromkeys(("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults",
                                "BuildMetrics", "BuildStages", "MetricSamples"), 0)
        failures = []
        steps: dict[tuple[str, str], int] = {}  # (task, major) -> builds using it
        for b in self.builds:
            if b.status != "completed":
                continue
            counts["TimelineBuilds"] += 1
            for identity in self._steps_of(b):
                steps[identity] = steps.get(identity, 0) + 1
            counts["TimelineIssues"] += len(b.validation)
            for index, (result, _, category) in enumerate(b.validation):
                if result == "error":
                    failures.append({"project": b.project, "build_id": b.id, "attempt": 1, "record_id": "",
                                     "issue_index": index, "category": category})
            for stage in b.stages:
                counts["TimelineRecords"] += 1
                ran = [job for job in stage.jobs if job.runs]
                counts["TimelineRecords"] += 1 if (stage.checkpoint_id and ran) else 0
                for job in ran:
                    counts["TimelineRecords"] += 1  # phase
                    for run in job.runs:
                        counts["TimelineRecords"] += 1 + run.n_tasks
                        for key in sorted(run.issues):
                            record_id = run.record_id if key == -1 else guid(b.seed, "task", job.identifier,
                                                                              run.attempt, key)
                            for index, issue in enumerate(run.issues[key]):
                                counts["TimelineIssues"] += 1
                                if issue.type == "error":
                                    failures.append({"project": b.project, "build_id": b.id, "attempt": run.attempt,
                                                     "record_id": record_id, "issue_index": index,
                                                     "category": issue.category})
                        if run.test_run is not None:
                            counts["TestRuns"] += 1
                            counts["TestResults"] += len(self.tests[b.definition.id]) + run.test_run.extra
            if b.metrics is not None:
                docs = self.metrics_documents(b)
                for doc in docs.values():
                    count_metrics_document(counts, doc)
        evidence = self.flaky_evidence()
        flaky = sorted(name for name, ev in evidence.items() if ev["results"] >= FLAKY_MIN_RESULTS
                       and ev["flaky_commits"] >= FLAKY_MIN_COMMITS and ev["flake_rate"] >= FLAKY_MIN_RATE)
        broken = sorted(t.name for tests in self.tests.values() for t in tests if t.kind == "broken")
        stable = sum(1 for tests in self.tests.values() for t in tests if t.kind in ("stable", "ignored"))
        secrets = set(self.secrets.values)
        secrets.update(b.person[1] for b in self.builds if "@" in b.person[1] and b.person != cat.SERVICE_IDENTITY)
        return {
            "seed": self.seed,
            "projects": self.projects,
            "organization": self.organization,
            "end": iso(self.end),
            "days": self.days,
            "builds_per_day": self.builds_per_day,
            "expected_counts": counts,
            "flaky_tests": flaky,
            "flaky_evidence": evidence,
            "flaky_thresholds": {"min_results": FLAKY_MIN_RESULTS, "min_flaky_commits": FLAKY_MIN_COMMITS,
                                 "min_flake_rate": FLAKY_MIN_RATE},
            "broken_tests": broken,
            "stable_tests_count": stable,
            "regressions": self.regressions,
            "failures": failures,
            "planted_secrets": sorted(secrets),
            "large_runs": self.large_runs(),
            # PipelineSteps: one row per build and step identity; `steps` says how many builds use each.
            "pipeline_steps": {"rows": sum(steps.values()),
                               "steps": {f"{name}@{major}": n for (name, major), n in sorted(steps.items())}},
        }

    @staticmethod
    def _steps_of(b: Any) -> set[tuple[str, str]]:
        """(task name, major version) of every task record the build's timelines hold, over all attempts."""
        return {(task.task[1], task.task[2].split(".")[0])
                for stage in b.stages for job in stage.jobs for run in job.runs
                for task in job.tasks[: run.n_tasks] if task.task is not None}
