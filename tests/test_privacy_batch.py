"""Batch redaction is exact: `redact_many` (one joined scan for many texts), the in-place scrub of raw
payloads and the scrub into serialized JSON give what redacting each text alone (`Scrubber.redact_uncached`)
and the copying scrub give."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.json_line import json_line
from etl.privacy import (
    DETECTORS,
    Scrubber,
    _replace_strings,
    batch_pattern,
    scrub_payload,
    scrub_payload_in_place,
    scrub_payload_serialized,
)
from tests.test_privacy_memo import PIECES, PLANTED_TEXTS, TEXTS

SAMPLES = Path(__file__).parent / "data" / "samples" / "azure-devops"


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber(b"test-key")


def test_redact_many_of_the_planted_set_is_each_text_redacted_alone(scrubber: Scrubber) -> None:
    expected = {t: scrubber.redact_uncached(t) for t in PLANTED_TEXTS}
    assert scrubber.redact_many(PLANTED_TEXTS) == expected


def test_redact_many_answers_memoised_texts_and_skips_values_that_are_no_text(scrubber: Scrubber) -> None:
    scrubber.redact("mail ops@contoso.com")
    assert scrubber.redact_many(["mail ops@contoso.com", "", 7, "plain words"]) == {
        "mail ops@contoso.com": "mail <email>", "": "", "plain words": "plain words"}


def test_redact_many_masks_a_learned_name_and_a_revealed_secret(scrubber: Scrubber, monkeypatch) -> None:
    monkeypatch.setattr("etl.privacy.revealed_values", lambda: frozenset({"hunter2-value"}))
    scrubber.learn_names({"build-agent-07"})
    pseudonym = scrubber.pseudonymize("build-agent-07")
    assert scrubber.redact_many(["on BUILD-AGENT-07 now", "x hunter2-value y", "clean"]) == {
        "on BUILD-AGENT-07 now": f"on {pseudonym} now", "x hunter2-value y": "x <secret> y", "clean": "clean"}


def test_a_loopback_address_in_a_log_url_is_kept_without_a_match_of_the_joined_scan(scrubber: Scrubber) -> None:
    url = "http://127.0.0.1:41501/org/_apis/build/builds/3184/logs/6"
    assert (scrubber._touched([url, "10.1.2.3 down"]), scrubber.redact_many([url])) == ({1}, {url: url})


def test_the_detectors_use_no_anchor_the_joined_scan_would_read_differently() -> None:
    # `batch_pattern` relaxes `^` and `\z` only: any other anchor of a whole text would make the joined scan
    # miss a match. Character classes (`[^...]`) and the relaxed forms are not anchors.
    for d in DETECTORS:
        relaxed = batch_pattern(d).replace("(?m:^)", "").replace("(?m:$)", "")
        bare = re.sub(r"\\.|\[\^", "", relaxed)
        assert ("^" not in bare, "$" not in bare) == (True, True), d.name
        assert not re.search(r"\\[AzZ]", relaxed), d.name


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=12))
def test_redact_many_equals_every_detector_run_in_order_over_each_text(texts: list[str]) -> None:
    scrubber = Scrubber(b"test-key")
    assert scrubber.redact_many(texts) == {t: scrubber.redact_uncached(t) for t in texts}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
       st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join))
def test_redact_many_is_exact_for_texts_made_only_of_detector_pieces(first: str, second: str) -> None:
    scrubber = Scrubber(b"test-key")
    assert scrubber.redact_many([first, second]) == {first: scrubber.redact_uncached(first),
                                                     second: scrubber.redact_uncached(second)}


def _real_payloads() -> list[object]:
    paths = sorted(SAMPLES.rglob("*.json"))
    assert len(paths) >= 20  # the recorded and documented Azure DevOps responses in the repository
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def test_the_in_place_scrub_of_every_real_azure_devops_sample_is_the_copying_scrub() -> None:
    payloads = _real_payloads()
    copied = [scrub_payload(Scrubber(b"test-key"), p) for p in payloads]
    assert [scrub_payload_in_place(Scrubber(b"test-key"), copy.deepcopy(p)) for p in payloads] == copied


def test_the_in_place_scrub_redacts_keys_reduces_identities_and_pseudonymizes_names(scrubber: Scrubber) -> None:
    payload = {"records": [{"workerName": "build-01", "log": {"url": "on build-01 see 10.1.2.3"}}],
               "requestedFor": {"displayName": "Jane Doe", "uniqueName": "jane@contoso.com"},
               "ops@contoso.com": ["done", ("tuple", "ops@contoso.com")]}
    expected = scrub_payload(Scrubber(b"test-key"), payload)
    result = scrub_payload_in_place(scrubber, payload)
    pseudonym = scrubber.pseudonymize("build-01")
    assert (result, result is payload) == (expected, True)
    assert result == {"records": [{"workerName": pseudonym, "log": {"url": f"on {pseudonym} see <ip>"}}],
                      "requestedFor": {"id": scrubber.pseudonymize("jane@contoso.com")},
                      "<email>": ["done", ["tuple", "<email>"]]}


def test_the_in_place_scrub_of_a_bare_text_is_its_redaction(scrubber: Scrubber) -> None:
    assert scrub_payload_in_place(scrubber, "mail ops@contoso.com") == "mail <email>"


def test_a_lone_surrogate_becomes_the_replacement_character_in_every_redaction(scrubber: Scrubber) -> None:
    # The standard library's JSON decoder, the fallback for bodies orjson refuses, decodes "\ud800" so.
    text = "step x\ud800y for ops@contoso.com"
    expected = "step x\ufffdy for <email>"
    assert (scrubber.redact_uncached(text), scrubber.redact_many([text, "clean"]), scrubber.redact(text)) == (
        expected, {text: expected, "clean": "clean"}, expected)


def test_a_raw_payload_with_a_lone_surrogate_is_scrubbed_to_json_that_orjson_writes(scrubber: Scrubber) -> None:
    import orjson

    payload = {"records": [{"name": "a\udc00b", "workerName": "agent\ud800"}], "k\ud800": "v"}
    scrubbed = scrub_payload_in_place(scrubber, payload)
    assert orjson.loads(orjson.dumps(scrubbed)) == {
        "records": [{"name": "a\ufffdb", "workerName": scrubber.pseudonymize("agent\ud800")}], "k\ufffd": "v"}


def test_a_name_with_a_lone_surrogate_has_the_pseudonym_it_is_masked_with(scrubber: Scrubber) -> None:
    name = "agent\ud800"
    scrubber.learn_names({name})
    assert scrubber.redact(f"ran on {name}") == f"ran on {scrubber.pseudonymize(name)}"


def test_the_serialized_scrub_of_every_real_azure_devops_sample_is_the_copying_scrub_written() -> None:
    payloads = _real_payloads()
    written = [json_line(scrub_payload(Scrubber(b"test-key"), p)) for p in payloads]
    assert [scrub_payload_serialized(Scrubber(b"test-key"), copy.deepcopy(p), json_line) for p in payloads] == written


#: Texts that test the replacement in the JSON: redacted ones, ones made of what lies between strings, quotes
#: and backslashes around a redacted one, and a redacted text inside a longer one.
JSON_TEXTS = st.sampled_from([
    "ops@contoso.com", "mail ops@contoso.com", '"ops@contoso.com"', '\\"ops@contoso.com', "ops@contoso.com\\",
    ",", ":", '","', "1,2", "true", "10.1.2.3", "at 10.1.2.3:80", "C:\\Users\\jane\\x", "plain", "",
    "build-agent-07", "on build-agent-07", "token=abc123def456ghi", "\n", "ü ops@contoso.com",
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1) | JSON_TEXTS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_TEXTS, children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_the_serialized_scrub_is_the_copying_scrub_written_for_any_json(value: object) -> None:
    expected = json_line(scrub_payload(Scrubber(b"test-key"), value))
    assert scrub_payload_serialized(Scrubber(b"test-key"), copy.deepcopy(value), json_line) == expected


def test_a_redacted_string_is_replaced_in_the_json_wherever_it_is_a_whole_string() -> None:
    data = json_line(["ops@contoso.com", {"a": "ops@contoso.com"}, "cc ops@contoso.com"])
    assert _replace_strings(data, {"ops@contoso.com": "<email>"}) == (
        b'["<email>",{"a":"<email>"},"cc ops@contoso.com"]\n')


def test_a_redacted_key_is_left_to_the_walk_so_its_object_stays_sorted() -> None:
    assert _replace_strings(json_line({"ops@contoso.com": 1}), {"ops@contoso.com": "<email>"}) is None


def test_a_text_made_of_what_lies_between_strings_is_left_to_the_walk() -> None:
    # `","` is also the comma between the two strings of the list.
    assert _replace_strings(json_line(["a", "b", ","]), {",": "<redacted>"}) is None


def test_a_text_found_after_an_escaped_quote_is_left_to_the_walk() -> None:
    # The end of the string `say "ops@contoso.com` reads, quoted, as the string `ops@contoso.com`.
    data = json_line(['say "ops@contoso.com'])
    assert (data, _replace_strings(data, {"ops@contoso.com": "<email>"})) == (
        b'["say \\"ops@contoso.com"]\n', None)


def test_a_payload_orjson_cannot_write_before_its_redaction_is_written_after_it(scrubber: Scrubber) -> None:
    assert scrub_payload_serialized(scrubber, {"name": "a\udc00b ops@contoso.com"}, json_line) == (
        '{"name":"a\ufffdb <email>"}\n'.encode())


NAMES = ["build-agent-07", "Jane Doe", "NetCore1ESPool-Internal-16"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES + NAMES), min_size=1, max_size=6).map("".join),
       st.lists(st.sampled_from(PIECES + NAMES), min_size=1, max_size=6).map("".join))
def test_redact_many_with_learned_names_equals_every_detector_run_in_order(first: str, second: str) -> None:
    # The detectors and the names are scanned as one pattern (`Scrubber.touched_spans`).
    scrubber = Scrubber(b"test-key")
    scrubber.learn_names(NAMES)
    assert scrubber.redact_many([first, second]) == {first: scrubber.redact_uncached(first),
                                                     second: scrubber.redact_uncached(second)}
