"""Durations as Argo CD and Kubernetes spell them: ``90s``, ``5m``, ``1h30m``, ``250ms``, or plain seconds.

Pure: text in, seconds out (and back, for people). It must not read a clock or do I/O.
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a Go duration (``1h30m``, ``5s``), or a number of seconds (Argo CD accepts
    ``"5"`` for ``5s``); ValueError for anything else, and for a negative duration."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    plain = isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip())
    if isinstance(value, int | float) or plain:
        seconds = float(value)  # type: ignore[arg-type]
    elif isinstance(value, str) and value and _PART.sub("", value) == "":
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value))
    else:
        raise ValueError(f"{value!r} is not a duration (like 90s, 5m or 1h30m)")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` the Go way, shortest form: ``1h``, ``1h30m``, ``45s``, ``2m5s``."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
