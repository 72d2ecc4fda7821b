"""The limits on what an admission request may be and on what a response says, and the helpers that keep them.

Role: the numbers and the pure helpers behind them. Requests: at most 3 MiB (the API server's own limit)
and at most ``MAX_NESTING_DEPTH`` levels of JSON nesting, measured on the raw bytes before anything parses
them (``nesting_depth``). Responses: warnings under 120 characters, at most 20 of them, a denial message
and each audit annotation under 1 KB; the helpers cut, join and clean text to fit: a warning with a control
character or a lone surrogate, or an audit key that is not a qualified name, is rejected by the API server.

This module must not do I/O, log, await, or know what the text says (webhook.admission.messages does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import accumulate

MAX_BODY_BYTES = 3 * 1024 * 1024
"""The API server's own request body limit: no genuine AdmissionReview is larger."""
MAX_NESTING_DEPTH = 200
"""Levels of JSON arrays and objects a review may nest, its envelope included. Kubernetes objects stay far
below (a CRD's schema, the deepest there are, costs two levels per level of its spec), and every recursive
step after parsing (``json.dumps``, the diff) stays far from the interpreter's recursion limit."""

MAX_WARNING_CHARS = 119
MAX_WARNINGS = 20
MAX_MESSAGE_BYTES = 1000
MAX_ANNOTATION_BYTES = 1000
ELLIPSIS = "…"

# The API server prefixes each key with "<webhook name>/" and checks the result is a qualified name, so
# the key must be the name part of one: alphanumerics, '-', '_', '.', at most 63 characters.
_AUDIT_KEY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


# nesting_depth works on bytes with C-speed operations only: a 3 MiB body costs a few milliseconds.
_ESCAPES = ((b"\\\\", b""), (b'\\"', b""))  # an escaped backslash first, so \\" still ends a string
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')
_FOLD = bytes.maketrans(b"{}", b"[]")
_STEPS = bytes.maketrans(b"[]", b"\x01\xff")  # +1 and -1 as signed bytes
_PEEL_ABOVE = 4096
_RUNS = re.compile(rb"\[+|\]+")


def nesting_depth(raw: bytes) -> int:
    """How deep JSON arrays and objects nest in ``raw``, exact for valid JSON (strings do not count).

    Escapes are dropped, everything but brackets and quotes deleted, then the brackets between quotes;
    a long remainder is peeled (each pass removes every innermost ``[]``, one level) before the running
    sum is taken. For input that is not JSON the number is meaningless, and the parser rejects it anyway.
    """
    for escape, nothing in _ESCAPES:
        raw = raw.replace(escape, nothing)
    marks = raw.translate(None, _NOT_MARKS).replace(b'""', b"")  # an adjacent pair changes no parity
    brackets = b"".join(marks.split(b'"')[::2]).translate(_FOLD)
    peeled = 0
    while len(brackets) > _PEEL_ABOVE and peeled < 8:
        shorter, peeled = brackets.replace(b"[]", b""), peeled + 1
        done = len(shorter) * 2 > len(brackets)  # peeling no longer pays
        brackets = shorter
        if done:
            break
    return peeled + _deepest(brackets)


def _deepest(brackets: bytes) -> int:
    """The highest running sum of ``[`` (+1) and ``]`` (-1): per run of one kind when runs are long."""
    turns = brackets.count(b"[]") + brackets.count(b"][")
    if turns * 8 >= len(brackets):
        return max(accumulate(memoryview(brackets.translate(_STEPS)).cast("b")), default=0)
    depth = deepest = 0
    for run in _RUNS.finditer(brackets):
        if run.group().startswith(b"["):
            depth += run.end() - run.start()
            deepest = max(deepest, depth)
        else:
            depth -= run.end() - run.start()
    return deepest


# Exactly the characters of Unicode categories Cc and Cs (tests/webhook check it against unicodedata): one
# regular-expression pass instead of a category lookup per character, which cost 20 µs per denial message.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def sanitize(text: str) -> str:
    """``text`` without control characters or lone surrogates, which the API server rejects in warnings."""
    return _UNSAFE.sub("?", text)


def clip(text: str, *, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, ending with an ellipsis when cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + ELLIPSIS


def clip_bytes(text: str, *, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 on a character boundary, with an ellipsis."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    room = max(max_bytes - len(ELLIPSIS.encode()), 0)
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def join_limited(items: Sequence[str], *, max_chars: int) -> str:
    """``a, b, c and N more``: as many items as fit in ``max_chars``, then a count of the rest."""
    shown: list[str] = []
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        tail = f" and {rest} more" if rest else ""
        candidate = ", ".join([*shown, item]) + tail
        if len(candidate) > max_chars:
            break
        shown.append(item)
    hidden = len(items) - len(shown)
    if shown or not items:
        return ", ".join(shown) + (f" and {hidden} more" if hidden else "")
    # Not even the first item fits whole: cut it, so the reader still sees where the list starts.
    tail = f" and {hidden - 1} more" if hidden > 1 else ""
    return clip(items[0], max_chars=max(max_chars - len(tail), 1)) + tail


def valid_audit_key(key: object) -> bool:
    """Whether the API server accepts ``key`` once it prefixes it with the webhook name."""
    return isinstance(key, str) and _AUDIT_KEY.fullmatch(key) is not None
