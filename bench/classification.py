"""Classification accuracy: on the simulator's planted failures and on the real-world corpus.

Simulator: starts `etl.simulator.start_server`, fetches every failed build's timelines (latest and
previous attempts) and validation results over HTTP exactly as the ETL does, redacts each planted
failure's message, classifies it with the shipped rules and compares with the ground truth's category.
Corpus: `tests/data/failure-corpus.yaml` (real CI errors, each cited). Also reports redaction and
classification throughput. Prints figures; never asserts (targets: simulator >= 95 %, corpus >= 90 %).

Usage: .venv/bin/python bench/classification.py [--seed 7] [--days 14] [--builds-per-day 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.classify import Classifier  # noqa: E402
from etl.privacy import Scrubber  # noqa: E402

RULES = ROOT / "config" / "failure-rules.yaml"
CORPUS = ROOT / "tests" / "data" / "failure-corpus.yaml"
API = {"api-version": "7.1"}


def report(title: str, expected: list[str], got: list[str], misses: list[tuple[str, str, str]]) -> float:
    """Print accuracy per kind and overall; return the overall accuracy."""
    total, right = Counter(expected), Counter(e for e, g in zip(expected, got, strict=True) if e == g)
    overall = sum(right.values()) / max(1, len(expected))
    print(f"\n== {title}: {sum(right.values())}/{len(expected)} correct = {overall:.1%}")
    for kind in sorted(total):
        print(f"  {kind:<15} {right[kind]:>4}/{total[kind]:<4} {right[kind] / total[kind]:.1%}")
    for expected_kind, got_kind, message in misses[:10]:
        print(f"  miss: expected {expected_kind}, got {got_kind}: {message[:110]!r}")
    return overall


def bench_corpus(classifier: Classifier) -> float:
    entries = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["entries"]
    got = [classifier.classify(message=e["message"]).category for e in entries]
    expected = [e["category"] for e in entries]
    misses = [(e, g, x["message"]) for e, g, x in zip(expected, got, entries, strict=True) if e != g]
    return report("real-world corpus", expected, got, misses)


class TimelineFetcher:
    """Timelines and builds of the simulated organization, fetched once each."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self._timelines: dict[tuple, dict] = {}

    def _get(self, path: str) -> Any:
        response = self.session.get(f"{self.url}/{path}", params=API, timeout=30)
        response.raise_for_status()
        return response.json()

    def build(self, project: str, build_id: int) -> dict:
        return self._get(f"{project}/_apis/build/builds/{build_id}")

    def timeline(self, project: str, build_id: int, timeline_id: str | None = None) -> dict:
        key = (project, build_id, timeline_id)
        if key not in self._timelines:
            suffix = f"/{timeline_id}" if timeline_id else ""
            self._timelines[key] = self._get(f"{project}/_apis/build/builds/{build_id}/timeline{suffix}") or {}
        return self._timelines[key]

    def record(self, project: str, build_id: int, record_id: str, attempt: int) -> dict | None:
        """The record execution (record id, attempt): in the latest timeline or a previous attempt's."""
        latest = self.timeline(project, build_id)
        records = latest.get("records") or []
        for r in records:
            if r.get("id") == record_id and int(r.get("attempt") or 1) == attempt:
                return r
        for r in records:
            for prev in r.get("previousAttempts") or []:
                if prev.get("recordId") == record_id or int(prev.get("attempt") or 0) == attempt:
                    older = self.timeline(project, build_id, prev.get("timelineId"))
                    for o in older.get("records") or []:
                        if o.get("id") == record_id and int(o.get("attempt") or 1) == attempt:
                            return o
        return None


def bench_simulator(classifier: Classifier, scrubber: Scrubber, seed: int, days: int, per_day: int) -> float | None:
    try:
        from etl.simulator import start_server
    except ImportError as exc:  # built in parallel; the corpus figures still stand
        print(f"\n== simulator: not available ({exc}); skipped")
        return None
    started = time.perf_counter()
    with start_server(seed=seed, days=days, builds_per_day=per_day) as server:
        truth = server.ground_truth["failures"]
        fetch = TimelineFetcher(server.url)
        expected, got, misses, missing = [], [], [], 0
        by_kind_rules: dict[str, Counter] = defaultdict(Counter)
        for f in truth:
            project, build_id, attempt = f["project"], int(f["build_id"]), int(f["attempt"])
            if not f["record_id"]:
                build = fetch.build(project, build_id)
                item = (build.get("validationResults") or [])[f["issue_index"]]
                c = classifier.classify(message=scrubber.redact(item.get("message")), result="failed")
            else:
                rec = fetch.record(project, build_id, f["record_id"], attempt)
                if rec is None:
                    missing += 1
                    continue
                issue = (rec.get("issues") or [])[f["issue_index"]]
                task = (rec.get("task") or {}).get("name")
                c = classifier.classify(message=scrubber.redact(issue.get("message")), task_name=task,
                                        record_name=scrubber.redact(rec.get("name")), result=rec.get("result"),
                                        exit_code=(issue.get("data") or {}).get("code"))
                if c.category != f["category"]:
                    misses.append((f["category"], c.category, issue.get("message") or ""))
            expected.append(f["category"])
            got.append(c.category)
            by_kind_rules[f["category"]][c.rule_id or "-"] += 1
    elapsed = time.perf_counter() - started
    if missing:
        print(f"\n(simulator: {missing} ground-truth failures not found in the served timelines)")
    accuracy = report(f"simulator seed={seed} days={days} builds/day={per_day} ({elapsed:.1f}s)", expected, got,
                      misses)
    print("  rules used per kind:")
    for kind, rules in sorted(by_kind_rules.items()):
        print(f"    {kind}: " + ", ".join(f"{r}={n}" for r, n in rules.most_common(4)))
    return accuracy


def bench_throughput(classifier: Classifier, scrubber: Scrubber) -> None:
    entries = [e["message"] for e in yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["entries"]]
    clean = "Compiling src/Foo/Bar.cs took 12 ms; 3 warnings, 0 errors"
    n = 200_000
    started = time.perf_counter()
    for _ in range(n):
        scrubber.redact(clean)
    per_clean = (time.perf_counter() - started) / n
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for m in entries:
            scrubber.redact(m)
    per_error = (time.perf_counter() - started) / (rounds * len(entries))
    fresh = Classifier.from_file(RULES)
    started = time.perf_counter()
    for m in entries:
        fresh.classify(message=m)
    per_classify = (time.perf_counter() - started) / len(entries)
    print("\n== throughput")
    print(f"  redact, message with nothing to redact: {per_clean * 1e6:.1f} µs ({1 / per_clean:,.0f}/s)")
    print(f"  redact, real CI error message:          {per_error * 1e6:.1f} µs")
    print(f"  classify, uncached real error:           {per_classify * 1e6:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--builds-per-day", type=int, default=12)
    args = parser.parse_args()
    classifier = Classifier.from_file(RULES)
    scrubber = Scrubber(b"bench-key")
    corpus = bench_corpus(classifier)
    simulator = bench_simulator(classifier, scrubber, args.seed, args.days, args.builds_per_day)
    bench_throughput(classifier, scrubber)
    print("\n== summary")
    print(f"  corpus accuracy:    {corpus:.1%} (target >= 90%)")
    print(f"  simulator accuracy: {'n/a' if simulator is None else f'{simulator:.1%}'} (target >= 95%)")


if __name__ == "__main__":
    main()
