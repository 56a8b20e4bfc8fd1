"""The failure-classification rule file (`config/failure-rules.yaml`): its model and loader.

A rule names the fields it looks at (message, task_name, record_name, exit_code, test_name,
result); each field's matcher is a substring list (`contains`, any of them), a regex (`regex`,
google-re2 syntax, searched) or exact values (`equals`, any of them); case-insensitive unless
`case_sensitive: true`. Every field the rule names must match. Rules are tried in file order; the
first that matches decides. Unknown keys are errors, and a regex re2 rejects is an error naming
the file and the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from etl.privacy import compile_re2
from etl.yamlfile import read_yaml as _read_yaml

Category = Literal[
    "network",
    "dependency",
    "architecture",
    "compilation",
    "test",
    "timeout",
    "cancelled",
    "configuration",
    "infrastructure",
    "resource",
    "permission",
    "security",
    "packaging",
    "unknown",
]
#: The failure kinds, in the order reports list them.
CATEGORIES: tuple[str, ...] = get_args(Category)
Origin = Literal["infrastructure", "code", "unknown"]
FIELDS = ("message", "task_name", "record_name", "exit_code", "test_name", "result")

#: Where a category's failures come from unless a rule says otherwise.
DEFAULT_ORIGINS: dict[str, str] = {
    "network": "infrastructure",
    "dependency": "infrastructure",
    # Cross-compilation, QEMU emulation, toolchains: the build machine, not the change.
    "architecture": "infrastructure",
    "compilation": "code",
    "test": "code",
    "timeout": "infrastructure",
    "cancelled": "infrastructure",
    "configuration": "code",
    "infrastructure": "infrastructure",
    "resource": "infrastructure",
    "permission": "infrastructure",
    "security": "code",
    "packaging": "code",
    "unknown": "unknown",
}


class RuleFileError(ValueError):
    """The rule file is unreadable or invalid; str() names the file, the rule and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Matcher(_Strict):
    """How one field is matched: any substring, a regex, or any exact value."""

    contains: list[str] | None = None
    regex: str | None = None
    equals: list[str] | None = None
    case_sensitive: bool = False

    @field_validator("contains", "equals", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | int) else value

    @field_validator("contains", "equals")
    @classmethod
    def _strings(cls, value: list[Any] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must not be empty")
        return None if value is None else [str(v) for v in value]

    @model_validator(mode="after")
    def _one_kind(self) -> Matcher:
        kinds = [k for k in ("contains", "regex", "equals") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a matcher needs exactly one of contains, regex, equals")
        return self


class Rule(_Strict):
    """One classification rule."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Stable id stored in RuleId.")
    category: Category
    origin: Origin | None = None
    description: str | None = None
    message: Matcher | None = None
    task_name: Matcher | None = None
    record_name: Matcher | None = None
    exit_code: Matcher | None = None
    test_name: Matcher | None = None
    result: Matcher | None = None

    @model_validator(mode="after")
    def _has_matcher(self) -> Rule:
        if not any(getattr(self, f) is not None for f in FIELDS):
            raise ValueError(f"rule needs at least one matcher among {', '.join(FIELDS)}")
        return self


class RuleFile(_Strict):
    """The whole rule file."""

    version: int = 1
    origins: dict[Category, Origin] = Field(default_factory=dict, description="Per-category default origin overrides.")
    buckets: dict[str, Category] = Field(
        default_factory=dict, description="In-band bucket (case-insensitive) -> category, used when no rule matched."
    )
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


#: A field check: (text, text lowercased once per classification) -> matched.
Predicate = Callable[[str, str], bool]


def compile_matcher(matcher: Matcher, where: str) -> Predicate:
    """A predicate over one field's text; RuleFileError when re2 rejects the regex."""
    if matcher.regex is not None:
        import re2  # here, not at the top, so the CLI starts without the [etl] extra

        pattern = matcher.regex if matcher.case_sensitive else f"(?i){matcher.regex}"
        try:
            compiled = compile_re2(pattern)
        except re2.error as exc:
            detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise RuleFileError(
                f"{where}: regex {matcher.regex!r} is not valid RE2 syntax ({detail}); "
                "RE2 has no backreferences or lookaround"
            ) from None
        return lambda text, _lower: compiled.search(text) is not None
    if matcher.contains is not None:
        if matcher.case_sensitive:
            needles = tuple(matcher.contains)
            return lambda text, _lower: any(n in text for n in needles)
        lowered = tuple(n.lower() for n in matcher.contains)
        return lambda _text, lower: any(n in lower for n in lowered)
    values = tuple(matcher.equals or ())
    if matcher.case_sensitive:
        return lambda text, _lower: text in values
    lowered_values = tuple(v.lower() for v in values)
    return lambda _text, lower: lower in lowered_values


def _error_lines(path: Path, raw: Any, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = err["loc"]
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rules = raw.get("rules") if isinstance(raw, dict) else None
            rule = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
            rule_id = rule.get("id") if isinstance(rule, dict) else None
            rest = ".".join(str(p) for p in loc[2:])
            where = f"rule {rule_id!r}" if rule_id else f"rules[{loc[1]}]"
            where += f" {rest}" if rest else ""
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {where}: {msg}")
    return "\n".join(lines)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file or raise RuleFileError naming it."""
    return _read_yaml(path, RuleFileError)


def load_rule_file(path: Path) -> RuleFile:
    """Read and validate a rule file (regexes are compiled by the classifier)."""
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RuleFileError(f"{path}: expected a mapping with a `rules:` list at the top level")
    try:
        return RuleFile.model_validate(raw)
    except ValidationError as exc:
        raise RuleFileError(_error_lines(path, raw, exc)) from None
