"""JSON arrays of a payload scrubbed as the bytes the service sent: raw staging without decoding most of them.

A build's timeline is about 2,000 records, 1.5 MB of JSON, and almost none of its texts need redacting.
Walking every record in Python to learn that was the largest cost of raw staging (docs/benchmarks.md,
"Timeline records staged raw from their bytes"). Here an array held as its elements' bytes stays bytes,
and only the elements that need it are decoded and scrubbed as `scrub_payload_in_place` scrubs them:

* an element the bytes cannot be scrubbed in (`_SUSPECT`): an escape other than a line break or a tab, an
  identity's or another name key, `workerName` not followed by its colon and a plain value;
* an element that a detector, a learned name or a revealed secret may match, found by one scan of the
  bytes (`Scrubber.touched_spans`) once the plain `workerName` values are pseudonymized there.

With no escape but `\\r`, `\\n` and `\\t`, every quote of an element opens or closes a text, so its texts are
what lies between its quotes, those escapes read as the characters they stand for: read so, with each quote
as a line break, the bytes are the texts as `redact_many` scans them, between lines of punctuation. The
letters of `workerName` are not punctuation, so `"workerName":"` can only open a key. The result decodes to
the values `scrub_payload` makes of the decoded elements; the elements left as bytes keep the service's key
order. tests/test_privacy_bytes.py checks this on hostile elements, tests/normalize/test_held_timelines.py
on the real samples.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate
from typing import Any

import orjson

from etl.json_line import read_json
from etl.privacy import (
    NAME_KEYS,
    Scrubber,
    compile_re2,
    reduce_in_place,
    replace_in_place,
    scrub_payload,
    serialized_with,
    spanned,
)

#: The one name key a timeline record has (its agent): its plain values are pseudonymized in the bytes.
_PAIR = re.compile(rb'"workerName":"([^"\\]*)"')
#: What the bytes cannot be scrubbed in, so the element holding it is decoded: any other name key (identities
#: among them); `workerName` not followed by its colon and a plain string, null, a number, an object or a list
#: (whitespace, the name as a value) or by a string with an escape; an escape but a line break or a tab (the
#: `\r\n` of a skipped step's result code is in most timelines); a number that may be past a double's range,
#: which orjson does not read (not a GUID's `4e123`: a number follows a colon, a comma or a bracket).
#: RE2 (a DFA, one pass) is several times faster here than the standard library or one search per key.
_SUSPECT = "|".join([
    '"(?:' + "|".join(sorted(NAME_KEYS - {"workerName"}, key=len, reverse=True)) + ')"',
    '"workerName"(?:[^:]|:[^"n{\\[0-9tf-])',
    '"workerName":"[^"\\\\]*\\\\',
    '\\\\[^rnt]',
    '[:,\\[]-?[0-9]+(?:\\.[0-9]+)?[eE][+-]?[0-9]{3}',
])
#: The escapes left in the bytes, and the characters they stand for in a text.
_ESCAPES = ((b"\\r", b"\r"), (b"\\n", b"\n"), (b"\\t", b"\t"))
#: No JSON document holds a raw NUL (a control character in a text is escaped): it separates the elements.
_SEPARATOR = b"\x00"
_SERIALIZE_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


@dataclass
class HeldArray:
    """A JSON array of a payload (at `container[key]`) held as its elements' bytes, to be staged scrubbed."""

    container: dict[str, Any]
    key: str
    elements: list[Any]  # bytes-like: bytes, or msgspec.Raw
    #: The elements decoded to be scrubbed as values: their positions, and the values (scrubbed in place).
    positions: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def decode(self, positions: list[int]) -> None:
        """Decode the elements at *positions* (ascending), to be scrubbed as values."""
        self.positions += positions
        self.values += [read_json(bytes(self.elements[i])) for i in positions]  # as a held body is read


def scrub_serialized_with_arrays(scrubber: Scrubber, value: dict[str, Any], arrays: list[HeldArray],
                                 serialize: Callable[[Any], bytes]) -> bytes:
    """`scrub_payload_serialized(scrubber, value, serialize)` of *value* with each of *arrays* in its place.

    The arrays' elements are bytes; each array is staged as an `orjson.Fragment` of its scrubbed elements.
    *value* holds an empty list (or anything) where each array goes; it is scrubbed in place.
    """
    pair_names: set[str] = set()
    splits: list[list[bytes]] = []  # each array's elements, joined, split at its `workerName` values
    for array in arrays:
        joined = _SEPARATOR.join(array.elements)
        split = _PAIR.split(joined)  # [between, value, between, value, ..., between]
        array.decode(sorted(_positions(joined, [m.span() for m in _suspect().finditer(joined)])))
        pair_names |= _pair_names(array, split)
        splits.append(split)
    names, texts, odd = reduce_in_place(scrubber, [value, *(array.values for array in arrays)])
    scrubber.learn_names(names | pair_names)
    segments: list[list[bytes]] = []  # each array's elements as bytes, their names pseudonymized
    for array, split in zip(arrays, splits, strict=True):
        pseudonymized, touched = _pseudonymized(scrubber, split)
        decoded = len(array.values)
        array.decode(sorted(touched - set(array.positions)))
        # Elements with no name key but plain pairs: their names are the pairs', learned above.
        _, more_texts, more_odd = reduce_in_place(scrubber, array.values[decoded:])
        texts |= more_texts
        odd += more_odd
        segments.append(pseudonymized)
    done = scrubber.redact_many(texts)
    for parent, key, child in odd:
        parent[key] = scrub_payload(scrubber, child)
    changed = {t: r for t, r in done.items() if r != t}
    for array, pseudonymized in zip(arrays, segments, strict=True):
        array.container[array.key] = orjson.Fragment(_staged(array, pseudonymized, changed))
    return serialized_with(value, changed, serialize)


def _pair_names(array: HeldArray, split: list[bytes]) -> set[str]:
    """The plain `workerName` values of the elements kept as bytes (a decoded element's are the walk's)."""
    if not array.positions:
        return {v.decode() for v in split[1::2]}
    skipped = set(array.positions)
    kept = _SEPARATOR.join(e for i, e in enumerate(array.elements) if i not in skipped)
    return {v.decode() for v in _PAIR.findall(kept)}


@cache
def _suspect() -> Any:
    return compile_re2(_SUSPECT)


def _positions(joined: bytes, spans: list[tuple[int, int]]) -> set[int]:
    """Positions of the elements (joined by `_SEPARATOR`) that the *spans* of *joined* touch."""
    if not spans:
        return set()
    return spanned(list(accumulate((len(s) + 1 for s in joined.split(_SEPARATOR)), initial=0)), spans)


def _pseudonymized(scrubber: Scrubber, split: list[bytes]) -> tuple[list[bytes], set[int]]:
    """(each element's bytes with its `workerName` values pseudonymized, the positions of the elements the
    scrubber's scan may match in them)."""
    values = split[1::2]
    pseudonyms = {v: b'"workerName":%s' % orjson.dumps(scrubber.pseudonymize(v.decode())) for v in set(values)}
    parts = list(split)
    parts[1::2] = [pseudonyms[v] for v in values]
    replaced = b"".join(parts)
    # The texts as `redact_many` scans them: each quote a line break, the escapes left the characters they are.
    scanned = replaced.replace(b'"', b"\n")
    if b"\\" in scanned:
        scanned = scanned.replace(b"\\r\\n", b"\r\n")  # most of them: one pass fewer
        if b"\\" in scanned:
            for escape, character in _ESCAPES:
                scanned = scanned.replace(escape, character)
    return replaced.split(_SEPARATOR), _positions(scanned, scrubber.touched_spans(scanned))


def _staged(array: HeldArray, segments: list[bytes], changed: dict[str, str]) -> bytes:
    """The array as staged: its decoded elements scrubbed and serialized, the others as *segments* holds them."""
    if array.values:
        if changed:
            replace_in_place(array.values, changed)
        for i, v in zip(array.positions, array.values, strict=True):
            segments[i] = orjson.dumps(v, default=str, option=_SERIALIZE_OPTIONS)
    return b"[" + b",".join(segments) + b"]"
