"""The admission hot path's JSON (issue 17): orjson first, the stdlib for what it refuses, the same result.

decode_json answers exactly what the stdlib-only decoder answered: the same document where both accept,
the same 400 (and reason) where the strict path refuses; encode_json writes what json.dumps writes, and
falls back to it for what orjson refuses. sanitize is one regular expression now; it must replace exactly
the characters of categories Cc and Cs, as the per-character lookup did.
"""

from __future__ import annotations

import json
import math
import sys
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.errors import AdmissionRequestError
from webhook.admission.limits import sanitize
from webhook.admission.request import decode_json
from webhook.admission.response import encode_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_decoding_matches_the_stdlib_on_anything_the_api_server_writes(value: Any, ascii_only: bool) -> None:
    try:
        raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in text: refused either way, see below
        return
    assert decode_json(raw) == json.loads(raw)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"[1e400]", [math.inf]),  # orjson refuses it; the stdlib path decodes it as before
        (b"[123456789012345678901234567890]", [1.2345678901234568e29]),  # as the API server: a float64
        (b'{"a": 1, "a": 2}', {"a": 2}),
    ],
)
def test_what_orjson_refuses_or_rounds_decodes_as_before(raw: bytes, decoded: object) -> None:
    assert decode_json(raw) == decoded


def test_a_deep_body_with_few_brackets_is_not_scanned_and_a_deep_one_still_refused() -> None:
    assert decode_json(b"[" * 200 + b"]" * 200) is not None  # 200 brackets: within the limit, no scan
    with pytest.raises(AdmissionRequestError, match="nests 201 levels deep"):
        decode_json(b"[" * 201 + b"]" * 201)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_encoding_is_compact_json_that_decodes_to_the_same(value: Any) -> None:
    try:
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return
    assert json.loads(encode_json(value)) == json.loads(expected)


def test_encoding_falls_back_to_the_stdlib_for_what_orjson_refuses() -> None:
    assert encode_json({"a": "\ud800"}) == b'{"a":"\\ud800"}'  # escaped, not an exception
    assert encode_json([2**70]) == b"[1180591620717411303424]"


def test_sanitize_replaces_exactly_control_characters_and_surrogates() -> None:
    unsafe = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cc", "Cs")]
    assert sanitize("".join(unsafe)) == "?" * len(unsafe)
    safe = "".join(chr(c) for c in range(0x30000) if unicodedata.category(chr(c)) not in ("Cc", "Cs"))
    assert sanitize(safe) == safe
