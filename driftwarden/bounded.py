"""Bound a message to a length by shortening its middle: the start names the object, the end says why.

API servers, Git and renderers put the reason last ("... field is immutable"), so cutting a long message
from the start loses exactly what a reader needs. Every condition, event and span status that must fit a
bound goes through ``shorten``. Pure: no I/O, no logging; it must not import anything beyond the standard
library.
"""

from __future__ import annotations

MESSAGE_LIMIT = 1000
"""The bound of a condition message (Argo CD keeps messages short; status objects must stay small)."""
SPAN_LIMIT = 256
"""The bound of a span's status description (backends show it in one line)."""
ELLIPSIS = " … "


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` when it fits in ``limit`` characters, else its start and its end joined by `` … ``.

    The end gets the larger half: it carries the reason. A ``limit`` too small for the marker keeps only
    the end.
    """
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[len(text) - limit :] if limit > 0 else ""
    room = limit - len(ELLIPSIS)
    head = room // 3
    tail = room - head
    return text[:head] + ELLIPSIS + text[len(text) - tail :]


def shorten_bytes(text: str, limit: int) -> str:
    """``shorten`` to at most ``limit`` UTF-8 bytes (an Event's note is bounded in bytes, not characters)."""
    chars = limit
    out = shorten(text, chars)
    while len(out.encode()) > limit:
        chars -= max(1, (len(out.encode()) - limit) // 4)  # a character is at most 4 bytes
        out = shorten(text, chars)
    return out
