"""The API server's limits on what an admission response says, and the text helpers that keep within them.

Role: the numbers (warnings under 120 characters, at most 20 of them, a denial message and each audit
annotation under 1 KB) and the pure helpers that cut, join and clean text to fit: a warning with a control
character or a lone surrogate, or an audit key that is not a qualified name, is rejected by the API server.

This module must not do I/O, log, await, or know what the text says (webhook.admission.messages does).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MAX_WARNING_CHARS = 119
MAX_WARNINGS = 20
MAX_MESSAGE_BYTES = 1000
MAX_ANNOTATION_BYTES = 1000
ELLIPSIS = "…"

# The API server prefixes each key with "<webhook name>/" and checks the result is a qualified name, so
# the key must be the name part of one: alphanumerics, '-', '_', '.', at most 63 characters.
_AUDIT_KEY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def sanitize(text: str) -> str:
    """``text`` without control characters or lone surrogates, which the API server rejects in warnings."""
    return "".join("?" if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text)


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
