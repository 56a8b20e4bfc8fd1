"""Failure classification: rule file, precedence, in-band buckets, RE2 safety, signatures."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from etl.classify import DEFAULT_BUCKET_PATTERN, Classifier, RuleFileError, classifier_for, normalize_message, signature
from etl.classify.rules import load_rule_file
from etl.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = PROJECT_ROOT / "config" / "failure-rules.yaml"


def write_rules(tmp_path: Path, rules: list[dict], **extra) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **extra, "rules": rules}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.from_file(DEFAULT_RULES)


def test_shipped_rules_load_and_ids_are_unique() -> None:
    ids = [r.id for r in load_rule_file(DEFAULT_RULES).rules]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


def test_in_band_bucket_is_extracted(shipped: Classifier) -> None:
    c = shipped.classify(message="error CS1002: ; expected (NETCORE_ENGINEERING_TELEMETRY=Build)")
    assert (c.bucket, c.category, c.origin, c.rule_id) == ("Build", "compilation", "code", "dotnet-compiler-error")


def test_empty_in_band_bucket_is_none(shipped: Classifier) -> None:
    assert shipped.classify(message="x (NETCORE_ENGINEERING_TELEMETRY=) y").bucket is None


def test_bucket_decides_when_no_rule_matches(shipped: Classifier) -> None:
    c = shipped.classify(message="something odd happened (NETCORE_ENGINEERING_TELEMETRY=Restore)")
    assert (c.category, c.origin, c.rule_id) == ("dependency", "infrastructure", "bucket:Restore")


def test_unmatched_message_is_unknown(shipped: Classifier) -> None:
    c = shipped.classify(message="the flux capacitor is misaligned")
    assert (c.bucket, c.category, c.origin, c.rule_id) == (None, "unknown", "unknown", None)


def test_cancelled_result_wins_over_message(shipped: Classifier) -> None:
    c = shipped.classify(message="Connection refused", result="canceled")
    assert (c.category, c.rule_id) == ("cancelled", "cancelled-result")


def test_failed_test_without_known_message_is_a_test_failure(shipped: Classifier) -> None:
    c = shipped.classify(message="boom", test_name="Contoso.Tests.Api.Get", result="Failed")
    assert (c.category, c.origin, c.rule_id) == ("test", "code", "test-generic-from-test-name")


def test_first_matching_rule_wins(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [
        {"id": "first", "category": "network", "message": {"contains": "boom"}},
        {"id": "second", "category": "test", "message": {"contains": "boom"}},
    ])
    assert Classifier.from_file(path).classify(message="BOOM!").rule_id == "first"


def test_rule_origin_overrides_the_category_default(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "r", "category": "test", "origin": "infrastructure",
                                   "message": {"contains": "flaky device"}}])
    c = Classifier.from_file(path).classify(message="flaky device lost")
    assert (c.category, c.origin) == ("test", "infrastructure")


def test_file_level_origin_defaults_apply(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "r", "category": "timeout", "message": {"contains": "slow"}}],
                       origins={"timeout": "code"})
    assert Classifier.from_file(path).classify(message="slow").origin == "code"


def test_every_named_field_must_match(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "r", "category": "resource", "exit_code": {"equals": ["137"]},
                                   "task_name": {"regex": "^Bash"}}])
    c = Classifier.from_file(path)
    assert c.classify(exit_code="137", task_name="Bash@3").rule_id == "r"
    assert c.classify(exit_code="137", task_name="PowerShell@2").rule_id is None
    assert c.classify(exit_code="1", task_name="Bash@3").rule_id is None


def test_case_sensitive_matcher_respects_case(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "r", "category": "network",
                                   "message": {"regex": r"\bENOTFOUND\b", "case_sensitive": True}}])
    c = Classifier.from_file(path)
    assert c.classify(message="getaddrinfo ENOTFOUND x").rule_id == "r"
    assert c.classify(message="ModuleNotFoundError: x").rule_id is None


def test_unknown_key_in_a_rule_names_the_file_and_rule(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "bad-rule", "category": "network", "mesage": {"contains": "x"}}])
    with pytest.raises(RuleFileError) as err:
        load_rule_file(path)
    assert f"{path}: rule 'bad-rule' mesage: unknown key" in str(err.value)


def test_unknown_category_is_an_error(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "r", "category": "cosmic-rays", "message": {"contains": "x"}}])
    with pytest.raises(RuleFileError, match=r"rule 'r' category"):
        load_rule_file(path)


def test_regex_re2_rejects_is_a_clear_error_naming_file_and_rule(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "backref", "category": "test", "message": {"regex": r"(a)\1"}}])
    with pytest.raises(RuleFileError) as err:
        Classifier.from_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: rule 'backref' message: regex '(a)\\\\1' is not valid RE2 syntax")
    assert "no backreferences" in message


def test_catastrophic_backtracking_pattern_runs_on_a_100kb_line(tmp_path: Path) -> None:
    path = write_rules(tmp_path, [{"id": "evil", "category": "test", "message": {"regex": "^(a+)+$"}}])
    c = Classifier.from_file(path)
    assert c.classify(message="a" * 100_000 + "!").rule_id is None
    assert c.classify(message="a" * 100_000).rule_id == "evil"


def test_custom_bucket_pattern_is_used(tmp_path: Path) -> None:
    c = Classifier(bucket_pattern=r"\[bucket:(\w+)\]")
    assert c.bucket("failed [bucket:Infra] now") == "Infra"


def test_invalid_bucket_pattern_is_a_config_error() -> None:
    with pytest.raises(RuleFileError, match="bucket_pattern"):
        Classifier(bucket_pattern=r"(x)\1")


def test_classifier_for_rereads_an_edited_rule_file(write_config, tmp_path: Path) -> None:
    rules = write_rules(tmp_path, [{"id": "one", "category": "network", "message": {"contains": "zap"}}])
    settings = load_config(write_config({"sources": [{"kind": "simulator"}],
                                         "classification": {"rules": str(rules)}}))
    assert classifier_for(settings).classify(message="zap").rule_id == "one"
    write_rules(tmp_path, [{"id": "two", "category": "test", "message": {"contains": "zap"}}])
    os.utime(rules, ns=(os.stat(rules).st_atime_ns, os.stat(rules).st_mtime_ns + 1_000_000_000))
    assert classifier_for(settings).classify(message="zap").rule_id == "two"


def test_default_bucket_pattern_matches_the_config_default() -> None:
    from etl.config import Classification as ClassificationSettings

    assert ClassificationSettings().bucket_pattern == DEFAULT_BUCKET_PATTERN


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("/home/vsts/work/1/s/src/Foo/Bar.cs(12,5): error CS0246: 'Baz' not found [/home/vsts/work/1/s/Foo.csproj]",
         "<path>/bar.cs(<n>): error cs0246: 'baz' not found <path>/foo.csproj]"),
        ("D:\\a\\_work\\1\\s\\src\\Foo.cs(3,4): error CS1002: ; expected", "<path>/foo.cs(<n>): error cs1002: ; expected"),
        ("GET https://x.blob.core.windows.net/a/b.zip?sig=abc&se=1 failed at 2024-01-02T03:04:05.123Z (attempt 3)",
         "get https://x.blob.core.windows.net/a/b.zip failed at <ts> (attempt <n>)"),
        ("run 1b4e28ba-2fa1-11d2-883f-0016d3cca427 commit 9f3b2c1d7e wrote /tmp/tmpab12cd/out.txt",
         "run <guid> commit <hex> wrote <tmp>/out.txt"),
        ("main.c:12:5: error: expected ';'   before '}' token", "main.c:<n>:<n>: error: expected ';' before '}' token"),
        ("Timed out after 00:01:30.5 at line 42", "timed out after <ts> at line <n>"),
    ],
)
def test_normalize_message_removes_volatile_parts(message: str, expected: str) -> None:
    assert normalize_message(message) == expected


def test_signature_groups_messages_differing_only_in_volatile_parts() -> None:
    a = "/home/vsts/work/1/s/src/A.cs(12,5): error CS0246: type 'Foo' not found (build 1b4e28ba-2fa1-11d2-883f-0016d3cca427)"
    b = "D:\\a\\_work\\7\\s\\src\\A.cs(99,1): error CS0246: type 'Foo' not found (build 6fa459ea-ee8a-3ca4-894e-db77e160355e)"
    assert signature(a) == signature(b)
    assert re.fullmatch(r"[0-9a-f]{16}", signature(a))


def test_signature_separates_different_error_codes() -> None:
    assert signature("error CS0246: type not found") != signature("error CS0103: type not found")


def test_signature_of_none_is_the_empty_message_signature() -> None:
    assert signature(None) == signature("")
