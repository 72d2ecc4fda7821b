"""Decoding a review body within the limits (webhook.admission.request, .limits): nesting measured on the raw
bytes before parsing, strict UTF-8, no lone surrogates, NaN or Infinity; every refusal a clear 400."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from driftwarden.errors import AdmissionRequestError
from tests.webhook.reviews import admission_review, deployment
from webhook.admission.limits import MAX_NESTING_DEPTH, nesting_depth
from webhook.admission.request import decode_json, read_admission_review

# Strings full of what could confuse a scan: brackets, quotes, backslashes, escapes.
pieces = st.sampled_from([*'[]{}"\\/u ax\n\t', "\\u005c", '\\"', "é", "😀"])
tricky_text = st.lists(pieces, max_size=12).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=40,
)


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def nested(depth: int, leaf: object = "x") -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def nested_text(depth: int) -> str:
    """``nested(depth)`` as JSON text, built without json.dumps (which cannot go thousands deep)."""
    opening = "".join("[" if level % 2 else '{"k":' for level in reversed(range(depth)))
    closing = "".join("]" if level % 2 else "}" for level in range(depth))
    return f'{opening}"x"{closing}'


@given(json_values, st.booleans())
@example(["]]]", {"a": '\\"[['}], False)
@example({"a": "\\", "b": [[["]"]]]}, True)
def test_nesting_depth_is_exact_for_any_json(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(raw) == depth_of(value)


@pytest.mark.parametrize("depth", [0, 1, 7, 199, 200, 201, 977, 5000])
def test_nesting_depth_of_long_and_deep_bodies(depth: int) -> None:
    wide = f"[{json.dumps([[]] * 3000)}, {nested_text(depth)}]"  # long enough to take the peeling path
    assert nesting_depth(wide.encode()) == max(3, depth + 1)


def test_a_body_at_the_limit_decodes_and_one_level_more_is_a_400() -> None:
    envelope = 1  # the AdmissionReview's own object
    at_limit = {"deep": nested(MAX_NESTING_DEPTH - envelope)}
    assert decode_json(json.dumps(at_limit).encode()) == at_limit
    over = {"deep": nested(MAX_NESTING_DEPTH)}
    with pytest.raises(AdmissionRequestError, match="nests 201 levels deep") as refused:
        decode_json(json.dumps(over).encode())
    assert refused.value.status == 400


def test_nesting_a_thousand_deep_in_8_kb_is_a_400_not_a_recursion_error() -> None:
    review = admission_review(old=deployment(), new=deployment())
    review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["args"] = "DEEP"
    body = json.dumps(review).replace('"DEEP"', nested_text(977)).encode()
    assert len(body) < 16_000
    with pytest.raises(AdmissionRequestError, match="levels deep"):
        read_admission_review(body)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": "\\ud800"}', "lone surrogate"),
        (b'{"a": "x\\uDC00y"}', "lone surrogate"),
        (b'{"k:{\\"name\\":\\"\\ud83d\\"}": {}}', "lone surrogate"),
        (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded as UTF-8 bytes
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b"\xef\xbb\xbf{}", "not JSON"),  # a byte-order mark
        (b'{"replicas": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b'{"a": 1' + b"1" * 5000 + b"}", "not JSON"),  # past int()'s digit limit
        (b"[1, 2", "not JSON"),
    ],
)
def test_what_the_api_server_never_writes_is_a_clear_400(raw: bytes, reason: str) -> None:
    with pytest.raises(AdmissionRequestError, match=reason) as refused:
        decode_json(raw)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b'{"a": "\\ud83d\\ude00"}', {"a": "😀"}),  # a surrogate pair is one character
        (b'{"a": "\\\\ud800"}', {"a": "\\ud800"}),  # an escaped backslash, then plain text
        (b'{"a": "\\u0000\\u200f\\u202e"}', {"a": "\x00\u200f\u202e"}),  # NUL and RTL marks are text
        (b'{"a": 1, "a": 2}', {"a": 2}),  # a duplicate key keeps its last value, as in the API server
    ],
)
def test_odd_but_valid_json_decodes_as_the_api_server_reads_it(raw: bytes, decoded: object) -> None:
    assert decode_json(raw) == decoded
