"""Reading typed fields out of an Application's spec, each failure naming the field (``InvalidSpecError``).

Pure helpers for auditor.application: plain mappings in, values out. No I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.durations import parse_duration
from driftwarden.errors import PermanentError


class InvalidSpecError(PermanentError):
    """The spec is invalid or asks for what driftwarden cannot do (the ``InvalidSpecError`` condition)."""


def read_map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise PermanentError(f"{path} must be a mapping, got {type(value).__name__}")
    return value


def required_map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = read_map(obj, key, path)
    if value is None:
        raise PermanentError(f"{path} is required")
    return value


def read_str(obj: Mapping[str, Any], key: str, path: str, *, default: str | None = None) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if default is None:
            raise PermanentError(f"{path} is required")
        return default
    if not isinstance(value, str):
        raise PermanentError(f"{path} must be a string, got {type(value).__name__}")
    return value


def read_bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise PermanentError(f"{path} must be true or false, got {value!r}")
    return value


def read_strs(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = obj.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PermanentError(f"{path} must be a list of strings")
    return tuple(value)


def check_path(path: str, field: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/") or ".." in parts:
        raise PermanentError(f"{field} must be a relative path inside the repository, got {path!r}")
    return path


def read_duration(obj: Mapping[str, Any], key: str, path: str, default: float) -> float:
    value = obj.get(key)
    if value is None or value == "":
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidSpecError(f"{path}: {exc}") from exc


def read_number(obj: Mapping[str, Any], key: str, path: str, default: float) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpecError(f"{path} must be a number, got {value!r}")
    return float(value)
