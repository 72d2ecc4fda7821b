"""Normalise Kubernetes objects for comparison: strip server noise, apply ignore rules, mask Secrets.

Everything here takes plain dicts and returns new ones; inputs are never mutated. It must not do I/O,
log, or print Secret values: masking replaces every Secret ``data`` value before anything is rendered.
"""

from __future__ import annotations

import base64
import copy
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import jq

from driftwarden.contract import ANNOTATION_DRIFT
from driftwarden.fieldsv1 import Location
from driftwarden.jsonpointer import parse_pointer

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOISE_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision", "deprecated.daemonset.template.generation")
"""Bookkeeping the workload controllers and the API server write on objects Git manages: never Git's."""
NOISE_ANNOTATIONS = (LAST_APPLIED, ANNOTATION_DRIFT, *CONTROLLER_ANNOTATIONS)
MASK_UNIT = "++++"
FIRST_MASK = MASK_UNIT * 2

_GONE = object()


def is_secret(obj: Mapping[str, Any]) -> bool:
    """True for core/v1 Secrets."""
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def _secret_data(obj: dict[str, Any]) -> None:
    """Fold ``stringData`` into base64 ``data`` as the API server does (stringData wins)."""
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, Mapping) or not string_data:
        return
    data = dict(obj["data"]) if isinstance(obj.get("data"), Mapping) else {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    obj["data"] = data


def normalize(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without status, server-set metadata, noisy annotations and empty label maps.

    Idempotent: ``normalize(normalize(x)) == normalize(x)``.
    """
    # What is dropped is never copied: managedFields and status are most of a small object.
    out = {
        key: _metadata(value) if key == "metadata" and isinstance(value, dict) else copy.deepcopy(value)
        for key, value in obj.items()
        if key != "status"
    }
    if is_secret(out):
        _secret_data(out)
    return out


def _metadata(meta: dict[str, Any]) -> dict[str, Any]:
    out = {key: copy.deepcopy(value) for key, value in meta.items() if key not in NOISE_METADATA}
    annotations = out.get("annotations")
    if isinstance(annotations, dict):
        for key in NOISE_ANNOTATIONS:
            annotations.pop(key, None)
    for field in ("labels", "annotations"):
        if field in out and not out[field]:
            del out[field]
    return out


# -- RFC 6901 JSON pointers ----------------------------------------------------------------------------


def resolve_pointer(obj: Any, pointer: str) -> Location | None:
    """Where ``pointer`` points in ``obj``, or None when nothing is there (or it names the whole object)."""
    location: list[str | int] = []
    node = obj
    for token in parse_pointer(pointer):
        if isinstance(node, Mapping) and token in node:
            location.append(token)
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and (token == "0" or not token.startswith("0")):
            index = int(token)
            if index >= len(node):
                return None
            location.append(index)
            node = node[index]
        else:
            return None
    return tuple(location) or None


# -- jq path expressions ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def compile_jq(expression: str) -> Any:
    """``[path(<expression>)]`` compiled; ValueError when ``expression`` is not a jq path expression."""
    return jq.compile(f"[path({expression})]")


def resolve_jq(obj: Any, expression: str) -> list[Location]:
    """Where the jq path ``expression`` points in ``obj`` (only places that exist), as Argo CD reads
    ``jqPathExpressions``; an expression that fails on this object (a type error) points nowhere."""
    try:
        found = compile_jq(expression).input_value(obj).first()
    except ValueError:
        return []
    out: list[Location] = []
    for steps in found if isinstance(found, list) else []:
        location = tuple(steps) if isinstance(steps, list) else ()
        if location and _exists(obj, location):
            out.append(location)
    return out


def _exists(obj: Any, location: Location) -> bool:
    node = obj
    for step in location:
        in_map = isinstance(node, Mapping) and isinstance(step, str) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if not (in_map or in_list):
            return False
        node = node[step]
    return True


# -- removal --------------------------------------------------------------------------------------------


def _mark(doc: Any, location: Location) -> None:
    node = doc
    for step in location[:-1]:
        node = node[step]
        if node is _GONE:  # inside a value another location removed already (the sentinel has no items)
            return
    node[location[-1]] = _GONE


def _strip(node: Any) -> Any:
    """Drop marked values; a container emptied by removal goes too, one that was empty already stays."""
    if isinstance(node, dict):
        kept = {k: s for k, v in node.items() if (s := _strip(v)) is not _GONE}
        return _GONE if node and not kept else kept
    if isinstance(node, list):
        items = [s for v in node if (s := _strip(v)) is not _GONE]
        return _GONE if node and not items else items
    return node


def remove_locations(obj: Mapping[str, Any], locations: Iterable[Location]) -> dict[str, Any]:
    """A copy of ``obj`` without the values at ``locations`` (all resolved against ``obj`` itself)."""
    doc = copy.deepcopy(dict(obj))
    marked = False
    for location in locations:
        if location:
            _mark(doc, location)
            marked = True
    if not marked:
        return doc
    stripped = _strip(doc)
    return stripped if isinstance(stripped, dict) else {}


def remove_pointers(obj: Mapping[str, Any], pointers: Iterable[str]) -> dict[str, Any]:
    """A copy of ``obj`` without the fields the JSON ``pointers`` name; absent ones are ignored."""
    found = [resolve_pointer(obj, p) for p in pointers]
    return remove_locations(obj, [loc for loc in found if loc is not None])


# -- Secret masking --------------------------------------------------------------------------------------


def _data(obj: dict[str, Any] | None) -> dict[str, Any]:
    data = (obj or {}).get("data")
    return data if isinstance(data, dict) else {}


def _masks_for(key: Any, objects: list[dict[str, Any] | None]) -> dict[str, str]:
    """One mask per distinct value of ``data[key]``: ``++++++++``, then four ``+`` longer each time."""
    masks: dict[str, str] = {}
    for obj in objects:
        value = _data(obj).get(key)
        if value is not None and str(value) not in masks:
            masks[str(value)] = FIRST_MASK + MASK_UNIT * len(masks)
    return masks


def mask_secrets(
    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Copies of a desired/live pair with every Secret data value replaced by a run of ``+``.

    As in Argo CD's HideSecretData, equal values get equal masks and different values masks of
    different lengths, so a changed key stays visible; mask lengths do not depend on value lengths,
    so not even a value's length leaks. Objects that are not Secrets are returned as copies.
    """
    pair = [None if o is None else copy.deepcopy(dict(o)) for o in (desired, live)]
    secrets = [o if o is not None and is_secret(o) else None for o in pair]
    for obj in secrets:
        if obj is not None:
            _secret_data(obj)
            if not isinstance(obj.get("data") or {}, Mapping):
                obj["data"] = FIRST_MASK
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if LAST_APPLIED in annotations:
                annotations[LAST_APPLIED] = FIRST_MASK
    keys = sorted({k for obj in secrets for k in _data(obj)}, key=str)
    for key in keys:
        masks = _masks_for(key, secrets)
        for obj in secrets:
            data = _data(obj)
            if data.get(key) is not None:
                data[key] = masks[str(data[key])]
    return pair[0], pair[1]
