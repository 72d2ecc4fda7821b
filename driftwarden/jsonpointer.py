"""JSON Pointers (RFC 6901): reference tokens in and out, the one escaping both processes use.

Pure: strings in, strings out; it must not know about Kubernetes objects (resolving a pointer against a
document is the caller's, since each caller treats missing and list values its own way).
"""

from __future__ import annotations

from collections.abc import Iterable


def escape(token: str | int) -> str:
    """One reference token: ``~`` becomes ``~0`` and ``/`` becomes ``~1`` (in that order, as the RFC says)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def format_pointer(tokens: Iterable[str | int]) -> str:
    """The JSON pointer for ``tokens``; ``""`` (the whole document) for none."""
    return "".join("/" + escape(token) for token in tokens)


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of ``pointer``; ValueError when it is not a valid RFC 6901 pointer."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    tokens = []
    for token in pointer[1:].split("/"):
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise ValueError(f"invalid '~' escape in JSON pointer {pointer!r}")
        tokens.append(token.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)
