"""Fast redaction is exact: the memos, the literal pre-check and the detector set give, for every text,
the same string as running every detector in order over it (`Scrubber.redact_uncached`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.privacy import EXAMPLE_MESSAGES, Scrubber, might_match
from tests.run.test_privacy_planted import FRAGMENT, PLANTED

DATA = Path(__file__).parent / "data"
PII = [e["message"] for e in yaml.safe_load((DATA / "pii-corpus.yaml").read_text(encoding="utf-8"))["entries"]]
PLANTED_TEXTS = [*PII, *EXAMPLE_MESSAGES, FRAGMENT, *PLANTED.values(), *(f"step {v} done" for v in PLANTED.values())]

# Pieces the detectors look for, so generated texts come near their edges (markers, prefixes, separators).
PIECES = ["AKIA", "ghp_", "eyJ", "Bearer ", "basic ", "--token ", "password=", "token: ", "sig=", "://", "@",
          "/home/", "C:\\Users\\", ".corp", ".internal", "10.1.2.3", "::", "==", "xoxb-", "npm_", "pypi-AgE",
          "AIza", "sk_live_", "AccountKey=", "-----BEGIN RSA PRIVATE KEY-----", "<secret>", "<user>", "git@",
          "ſ", "\u212a", " ", "\n", "Version=", "v", "1.2.3.4", "AZDO"]
TEXTS = st.lists(st.one_of(st.sampled_from(PIECES), st.text(min_size=1, max_size=40),
                           st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567ABCDEFGHIJKLMNOPQRSTUVWXYZ0189",
                                   min_size=1, max_size=90)),
                 max_size=8).map("".join)


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber(b"test-key")


def test_memoised_redaction_of_the_planted_set_is_the_unmemoised_redaction(scrubber: Scrubber) -> None:
    expected = [scrubber.redact_uncached(t) for t in PLANTED_TEXTS]
    first = [scrubber.redact(t) for t in PLANTED_TEXTS]
    again = [scrubber.redact(t) for t in PLANTED_TEXTS]  # answered from the memo
    assert (first, again) == (expected, expected)


def test_memoised_redaction_masks_names_learned_after_a_text_was_first_seen(scrubber: Scrubber) -> None:
    text = "copied by build-agent-07 from /home/alice/src"
    assert scrubber.redact(text) == "copied by build-agent-07 from /home/<user>/src"
    scrubber.learn_names({"build-agent-07"})
    pseudonym = scrubber.pseudonymize("build-agent-07")
    assert scrubber.redact(text) == f"copied by {pseudonym} from /home/<user>/src" == scrubber.redact_uncached(text)


def test_redaction_is_the_reference_when_the_detector_set_gives_up(scrubber: Scrubber) -> None:
    class GivesUp:
        def Match(self, text: str) -> list[int]:  # re2.Set's name
            return []  # what RE2::Set answers when its DFA runs out of memory

    scrubber._detectors = GivesUp()
    assert [scrubber.redact(t) for t in PLANTED_TEXTS] == [scrubber.redact_uncached(t) for t in PLANTED_TEXTS]


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_the_literal_pre_check_never_skips_a_text_that_would_be_redacted(text: str) -> None:
    if not might_match(text):
        assert Scrubber(b"test-key").redact_uncached(text) == text


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_redaction_equals_every_detector_run_in_order(text: str) -> None:
    scrubber = Scrubber(b"test-key")
    assert scrubber.redact(text) == scrubber.redact_uncached(text)


NAME_CHARS = "abkKsSſ\u212aßẞσςΣİi-0 7."


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet=NAME_CHARS, min_size=3, max_size=8), min_size=1, max_size=5),
       st.text(alphabet=NAME_CHARS + "xyz/@", max_size=40))
def test_the_name_pre_check_never_skips_a_text_holding_a_learned_name(names: list[str], text: str) -> None:
    scrubber = Scrubber(b"test-key")
    scrubber.learn_names(names)
    assert scrubber.redact(text) == scrubber.redact_uncached(text)
