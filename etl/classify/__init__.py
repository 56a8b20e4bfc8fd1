"""Failure classification and fingerprints.

`Classifier.classify` gives each failure (an issue, a failed record without issues, a test
result, an uploaded failure reason) its in-band bucket, a category, an origin (infrastructure or
code), the id of the rule that decided, and a signature. Rules come from
`config/failure-rules.yaml` (see `etl.classify.rules`); the first matching rule wins; when none
matches, the in-band bucket's category (the file's `buckets:` map) is used, else `unknown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from etl import resources
from etl.classify.rules import (
    CATEGORIES,
    DEFAULT_ORIGINS,
    FIELDS,
    Predicate,
    RuleFile,
    RuleFileError,
    compile_matcher,
    load_rule_file,
)
from etl.classify.signature import normalize_message, signature
from etl.privacy import compile_re2

__all__ = [
    "CATEGORIES",
    "DEFAULT_BUCKET_PATTERN",
    "Classification",
    "Classifier",
    "RuleFileError",
    "classifier_for",
    "normalize_message",
    "signature",
]

DEFAULT_BUCKET_PATTERN = r"\(NETCORE_ENGINEERING_TELEMETRY=([^)]*)\)"
DEFAULT_RULES = resources.folder("config") / "failure-rules.yaml"


@dataclass(frozen=True)
class Classification:
    """What a failure is: in-band bucket, kind, infrastructure or code, the rule that said so, fingerprint."""

    bucket: str | None
    category: str  # network, dependency, compilation, test, timeout, cancelled, configuration,
    # infrastructure, resource, permission, security, packaging, unknown
    origin: str  # "infrastructure", "code" or "unknown"
    rule_id: str | None
    signature: str


@dataclass(frozen=True)
class _CompiledRule:
    id: str
    category: str
    origin: str
    checks: tuple[tuple[str, Predicate], ...]


class Classifier:
    """Ordered rules + in-band bucket; `classify` is pure and cached (failure messages repeat)."""

    def __init__(
        self,
        rules: RuleFile | None = None,
        *,
        bucket_pattern: str = DEFAULT_BUCKET_PATTERN,
        source: str = "<rules>",
    ) -> None:
        rules = rules or RuleFile()
        self.rule_file = rules
        self._made_with = (bucket_pattern, source)
        origins = {**DEFAULT_ORIGINS, **rules.origins}
        self.origins = origins
        self.buckets = {k.lower(): v for k, v in rules.buckets.items()}
        compiled = []
        for rule in rules.rules:
            checks = tuple(
                (name, compile_matcher(getattr(rule, name), f"{source}: rule {rule.id!r} {name}"))
                for name in FIELDS
                if getattr(rule, name) is not None
            )
            compiled.append(_CompiledRule(rule.id, rule.category, rule.origin or origins[rule.category], checks))
        self._rules = tuple(compiled)
        try:
            self._bucket = compile_re2(bucket_pattern)
        except Exception as exc:
            raise RuleFileError(f"classification.bucket_pattern {bucket_pattern!r} is not valid RE2 syntax") from exc
        self._classify = lru_cache(maxsize=32768)(self._classify_uncached)

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled RE2 patterns do not pickle: a staging worker (etl/stage/workers.py) compiles the same rules again.
        bucket_pattern, source = self._made_with
        return (_rebuilt_classifier, (self.rule_file, bucket_pattern, source))

    @classmethod
    def from_file(cls, path: Path, bucket_pattern: str = DEFAULT_BUCKET_PATTERN) -> Classifier:
        """A classifier over the rules in *path*; RuleFileError names the file and rule on a bad rule."""
        return cls(load_rule_file(path), bucket_pattern=bucket_pattern, source=str(path))

    def bucket(self, message: str | None) -> str | None:
        """The in-band bucket a message declares, e.g. `Build` for `(NETCORE_ENGINEERING_TELEMETRY=Build)`."""
        if not message:
            return None
        m = self._bucket.search(message)
        if not m:
            return None
        value = (m.group(1) if m.groups() else m.group(0)).strip()
        return value or None

    def classify(
        self,
        *,
        message: str | None = None,
        task_name: str | None = None,
        record_name: str | None = None,
        result: str | None = None,
        exit_code: str | None = None,
        test_name: str | None = None,
    ) -> Classification:
        """Classify one failure (an issue, a failed record without issues, a test result, an upload)."""
        return self._classify(
            message or "",
            task_name or "",
            record_name or "",
            "" if result is None else str(result),
            "" if exit_code is None else str(exit_code),
            test_name or "",
        )

    def match_rule(self, fields: Mapping[str, str]) -> tuple[str, str, str] | None:
        """(rule id, category, origin) of the first rule matching *fields*, or None."""
        lowered = {name: text.lower() for name, text in fields.items() if text}
        for rule in self._rules:
            if all(name in lowered and check(fields[name], lowered[name]) for name, check in rule.checks):
                return rule.id, rule.category, rule.origin
        return None

    def _classify_uncached(
        self, message: str, task_name: str, record_name: str, result: str, exit_code: str, test_name: str
    ) -> Classification:
        bucket = self.bucket(message)
        fields = {
            "message": message,
            "task_name": task_name,
            "record_name": record_name,
            "result": result,
            "exit_code": exit_code,
            "test_name": test_name,
        }
        sig = signature(message) if message else signature(f"{task_name}|{record_name}|{result}|{exit_code}")
        hit = self.match_rule(fields)
        if hit:
            return Classification(bucket, hit[1], hit[2], hit[0], sig)
        if bucket and bucket.lower() in self.buckets:
            category = self.buckets[bucket.lower()]
            return Classification(bucket, category, self.origins[category], f"bucket:{bucket}", sig)
        return Classification(bucket, "unknown", "unknown", None, sig)


def configured_path(settings: Any, configured: Path, shipped: Path) -> Path:
    """A configured rule file; the shipped one when the setting is the default and the config's tree has none.

    A config kept outside the project (tests, a deployment directory) then still gets the shipped rules
    instead of failing; a path the user did set must exist.
    """
    path = settings.path(configured)
    if not path.exists() and not configured.is_absolute() and configured == Path("config") / shipped.name:
        return shipped
    return path


def _rebuilt_classifier(rules: RuleFile, bucket_pattern: str, source: str) -> Classifier:
    return Classifier(rules, bucket_pattern=bucket_pattern, source=source)


def classifier_for(settings: Any) -> Classifier:
    """The classifier with the configured rules and bucket pattern."""
    c = settings.classification
    path = configured_path(settings, c.rules, DEFAULT_RULES)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0  # from_file reports the missing file
    return _cached_classifier(path, stamp, c.bucket_pattern)


@lru_cache(maxsize=8)
def _cached_classifier(path: Path, stamp: int, bucket_pattern: str) -> Classifier:
    # *stamp* (the file's mtime) is part of the key so an edited rule file is re-read.
    return Classifier.from_file(path, bucket_pattern)


def classify_record(
    classifier: Classifier, record: Mapping[str, Any], issue: Classification | None = None
) -> Classification:
    """A failed timeline record's classification: its first error issue's, else from its own fields."""
    if issue is not None:
        return issue
    return classifier.classify(
        task_name=record.get("TaskName"),
        record_name=record.get("Name"),
        result=record.get("Result"),
        exit_code=record.get("ResultCode"),
    )
