"""Compact forms of the JSON documents the auditor keeps for a long time, and fingerprints of documents.

The auditor keeps state per managed object between passes (what Git wants, a cached dry run, the last seen
shape); as Python dicts a small ConfigMap costs several KiB, as compact JSON under one. ``pack`` makes the
compact form (``bytes``, or the document itself when JSON would not give it back exactly: NaN, integers
beyond 64 bits, keys that are not strings), ``unpack`` gives an equal document back. ``fingerprint`` is a
short digest of a document's content, independent of key order. Pure: no I/O; inputs are never mutated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson

Packed = bytes | Mapping[str, Any]
"""A document as ``pack`` keeps it."""


def pack(document: Mapping[str, Any]) -> Packed:
    """``document`` as compact JSON bytes, or ``document`` itself when JSON cannot carry it exactly."""
    try:
        packed = orjson.dumps(document)
    except TypeError:  # orjson.JSONEncodeError is one: a huge integer, a non-string key, a lone surrogate
        return document
    if b"null" in packed and orjson.loads(packed) != document:
        return document  # orjson writes NaN and Infinity as null
    return packed


def unpack(packed: Packed) -> dict[str, Any]:
    """The document ``pack`` kept (a new dict each time when it kept bytes)."""
    if isinstance(packed, bytes):
        document: dict[str, Any] = orjson.loads(packed)
        return document
    return packed if isinstance(packed, dict) else dict(packed)


def fingerprint(document: Mapping[str, Any]) -> bytes:
    """16 bytes that differ when the documents' content differs (keys in any order)."""
    try:
        text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson refuses, the standard library writes (as the digests always did)
        text = json.dumps(document, sort_keys=True).encode()
    return hashlib.blake2b(text, digest_size=16).digest()
