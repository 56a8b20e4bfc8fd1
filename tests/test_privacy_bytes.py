"""An array staged from its elements' bytes is scrubbed exactly as the walk of the decoded payload scrubs it.

The reference is `scrub_payload_serialized` of the payload with the array decoded. Each element below is
written as the bytes a service could send, including the ones the bytes cannot be scrubbed in (escapes,
identities, a name key spaced from its value, the name as a value), which must be decoded.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.json_line import json_line
from etl.privacy import Scrubber, scrub_payload_serialized
from etl.privacy_bytes import HeldArray, scrub_serialized_with_arrays
from etl.secret_refs import _REVEALED, remember_revealed
from tests.test_privacy_memo import PIECES

KEY = b"k" * 32
#: Beside the array: an identity whose names are masked in the array's texts, and a text naming an agent.
REST = {"build": {"requestedFor": {"displayName": "Jane Doe", "uniqueName": "jane@contoso.com"},
                  "reason": "queued on agent-7 by Jane Doe"}}

ELEMENTS = [
    b'{"id":"a","workerName":"agent-7","name":"Build"}',
    b'{"id":"b","workerName":"agent-8","name":"Job on agent-7"}',
    b'{"id":"c","resultCode":"Evaluating: succeeded()\\r\\nResult: False\\r\\n"}',
    b'{"id":"d","message":"failed\\r\\n10.1.2.3 refused\\tagain\\nJane Doe"}',
    b'{"id":"e","message":"C:\\\\Users\\\\jdoe\\\\src\\\\build.cmd failed"}',
    b'{"id":"f","message":"say \\"workerName\\":\\"agent-12\\""}',
    b'{"id":"f2","x\\"workerName":"agent-13"}',
    b'{"id":"g","workerName": "spaced-agent"}',
    b'{"id":"h","workerName" :"spaced-agent-2"}',
    b'{"id":"i","workerName":"agent\\t9"}',
    b'{"id":"j","name":"workerName"}',
    b'{"id":"k","details":{"owner":{"displayName":"John Roe","uniqueName":"john@contoso.com"}}}',
    b'{"id":"l","details":{"hostname":"build-host-01"},"name":"build-host-01 ran"}',
    b'{"id":"m","name":"caf\\u00e9 and caf\xc3\xa9 on agent-7"}',
    b'{"id":"n","name":"\\ud800 lone"}',
    b'{"id":"o","jane@contoso.com":"a key that is an e-mail"}',
    b'{"id":"p","message":"token ghp_' + b"a" * 36 + b'"}',
    b'{"id":"q","workerName":null,"log":{"url":"https://st.blob.core.windows.net/c/a.zip?sv=2021&sig=AbCdEf%2Bg123%3D"}}',
    b'{"id":"q2","workerName":{"name":"agent-14"},"order":3,"attempt":true}',
    b'[1,"jane@contoso.com",null]',
    b'"an element that is a text: /home/alice/work"',
    b'{ "id" : "r" , "workerName" : "agent-10" }',
    b'{"id":"s","workerName":"agent-7","nested":[{"workerName":"agent-11"},"agent-11 again"]}',
    b'{"id":"t","workerName":""}',
    b'{"id":"u","name":"Run step 0001","tiny":1e-400,"huge":1e400}',
]


def both(elements: list[bytes], rest: dict[str, Any] = REST) -> tuple[Any, Any, HeldArray, bytes]:
    """(reference staged value, staged value from the bytes, the held array, the staged line)."""
    reference = scrub_payload_serialized(Scrubber(KEY), {**copy.deepcopy(rest), "items": [json.loads(e) for e in elements]},
                                         json_line)
    value = {**copy.deepcopy(rest), "items": []}
    array = HeldArray(value, "items", list(elements))
    line = scrub_serialized_with_arrays(Scrubber(KEY), value, [array], json_line)
    return json.loads(reference), json.loads(line), array, line


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: e[:40].decode(errors="replace"))
def test_each_element_stages_as_the_walk_stages_it(element: bytes) -> None:
    reference, staged, _, _ = both([element])
    assert staged == reference


def test_the_elements_together_stage_as_the_walk_stages_them() -> None:
    reference, staged, _, _ = both(ELEMENTS)
    assert staged == reference


def test_only_the_elements_the_bytes_cannot_be_scrubbed_in_are_decoded() -> None:
    _, _, array, _ = both(ELEMENTS)
    decoded = {json.loads(ELEMENTS[i])["id"] if ELEMENTS[i].startswith(b"{") else i for i in array.positions}
    # Not decoded: a plain record (a), the escapes of line breaks and tabs (c), a name-key value that is no
    # text (q2), an empty name (t).
    assert decoded == {"b", "d", "e", "f", "f2", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", 19, 20, "r",
                       "s", "u"}


def test_an_untouched_element_keeps_its_bytes_with_its_agent_pseudonymized() -> None:
    element = b'{"z":1,"workerName":"agent-7","a":"Run step 0001"}'
    _, _, array, line = both([element, b'{"id":"b","name":"mail jane@contoso.com"}'], rest={})
    scrubber = Scrubber(KEY)
    scrubber.learn_names({"agent-7"})
    pseudonym = scrubber.pseudonymize("agent-7")
    assert array.positions == [1]
    assert line == (b'{"items":[{"z":1,"workerName":"%s","a":"Run step 0001"},{"id":"b","name":"%s"}]}\n'
                    % (pseudonym.encode(), scrubber.redact("mail jane@contoso.com").encode()))


def test_a_revealed_secret_in_an_element_is_masked() -> None:
    secret = "s3cr3t-value-from-key-vault"
    remember_revealed(frozenset({secret}))
    try:
        reference, staged, array, _ = both([b'{"id":"a","workerName":"agent-7","name":"echo s3cr3t-value-from-key-vault"}'])
    finally:
        _REVEALED.discard(secret)
    assert staged == reference
    assert secret not in json.dumps(staged)
    assert array.positions == [0]


def test_an_array_of_no_elements_stages_as_an_empty_list() -> None:
    reference, staged, _, line = both([], rest={})
    assert (staged, reference, line) == ({"items": []}, {"items": []}, b'{"items":[]}\n')


def test_a_name_learned_from_the_rest_of_the_payload_is_masked_in_the_elements() -> None:
    reference, staged, array, _ = both([b'{"id":"a","name":"Jane Doe approved"}'])
    assert staged == reference
    assert "Jane Doe" not in json.dumps(staged)
    assert array.positions == [0]


def test_the_staged_line_is_json_the_standard_library_and_orjson_read_alike() -> None:
    _, _, _, line = both([e for e in ELEMENTS if b"1e400" not in e])
    assert orjson.loads(line) == json.loads(line)


def test_an_integer_past_64_bits_no_writer_takes_stays_as_the_service_sent_it() -> None:
    # Decoded, it could not be staged at all (orjson writes 64-bit integers): the whole raw line was missing.
    element = b'{"id":"a","big":123456789012345678901234567890}'
    value: dict[str, Any] = {"items": []}
    array = HeldArray(value, "items", [element])
    line = scrub_serialized_with_arrays(Scrubber(KEY), value, [array], json_line)
    assert (array.positions, line) == ([], b'{"items":[%s]}\n' % element)


_NAMES = ["agent-7", "Jane Doe", "NetCore1ESPool-Internal-16"]
_TEXTS = st.lists(st.sampled_from(PIECES + _NAMES + ["\r\n", "\t", " ", "\\", '"', "é"]), max_size=6).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"id": st.uuids().map(str), "workerName": st.sampled_from([*_NAMES, None]),
                                       "name": _TEXTS, "resultCode": st.one_of(st.none(), _TEXTS)}),
                max_size=5))
def test_any_records_stage_from_their_bytes_as_the_walk_stages_them(records: list[dict[str, Any]]) -> None:
    reference, staged, _, _ = both([json.dumps(r, separators=(",", ":")).encode() for r in records])
    assert staged == reference
