"""Large AdmissionReviews of one shape each, for the decision-time tests (not a test module).

Every shape repeats one unit ``n`` times inside the applied Deployment, in the place that makes the
decision work hardest for it: Git-owned list elements that all changed (the shape of issue 13's 60 s
review), elements Git owns atomically, elements only reordered, new elements beside Git's, keys the API
server spells with escapes, a wide map, a set, an indexed list, strict mode, no GitOps entry at all,
many GitOps entries, planted entries of other managers, and deep nesting.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.webhook.reviews import AUDITOR, admission_review, container, deployment
from webhook.admission.request import AdmissionRequest, parse_admission_review
from webhook.admission.settings import DecisionSettings, make_settings

API_SERVER_LIMIT = 3 * 1024 * 1024
"""The API server's request limit, and so the largest review it sends."""


@dataclass(frozen=True)
class Bulky:
    """One review and the settings to decide it with; ``size`` is the review's JSON length in bytes."""

    request: AdmissionRequest
    settings: DecisionSettings
    size: int


Edit = Callable[[dict[str, Any], dict[str, Any], dict[str, Any], int], None]
"""Grows ``old``, ``new`` and the GitOps entry's fieldsV1 (``owned``) by ``n`` units, in place."""


def _env(
    old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int, *, leaf: bool = False
) -> None:
    container(old)["env"] = [{"name": f"E{i}", "value": "v"} for i in range(n)]
    element: dict[str, Any] = {} if leaf else {".": {}, "f:name": {}, "f:value": {}}
    entry = owned["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    entry["f:env"] = {f'k:{{"name":"E{i}"}}': dict(element) for i in range(n)}
    container(new)["env"] = [{"name": f"E{i}", "value": "changed"} for i in range(n)]


def _reordered(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    _env(old, new, owned, n)
    container(new)["env"] = [{"value": "v", "name": f"E{i}"} for i in range(n)]  # equal, spelled otherwise


def _new_items(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    _env(old, new, owned, n)
    container(new)["env"] = [*container(old)["env"], *({"name": f"N{i}", "value": "x"} for i in range(n))]


def _escaped(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    _env(old, new, owned, n)
    for side in (old, new):
        for item in container(side)["env"]:
            item["name"] = f"<{item['name']}&>"
    entry = owned["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    entry["f:env"] = {  # spelled as the API server spells it: Go escapes <, > and &
        f'k:{{"name":"\\u003cE{i}\\u0026\\u003e"}}': {".": {}, "f:name": {}, "f:value": {}} for i in range(n)
    }


def _wide_map(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    old["spec"]["template"]["metadata"]["labels"].update({f"l{i}": "a" for i in range(n)})
    owned["f:spec"]["f:template"]["f:metadata"]["f:labels"].update({f"f:l{i}": {} for i in range(n)})
    new["spec"]["template"]["metadata"]["labels"].update({f"l{i}": "b" for i in range(n)})


def _set(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    container(old)["args"] = [f"a{i}" for i in range(n)]
    _web_entry(owned)["f:args"] = {f'v:"a{i}"': {} for i in range(n)}
    container(new)["args"] = [f"b{i}" for i in range(n)]


def _indexed(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    container(old)["command"] = [f"a{i}" for i in range(n)]
    _web_entry(owned)["f:command"] = {f"i:{i}": {} for i in range(n)}
    container(new)["command"] = [f"b{i}" for i in range(n)]


def _web_entry(owned: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = owned["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    return entry


def _unowned(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    old["spec"]["template"]["metadata"]["annotations"] = {f"a{i}": "x" for i in range(n)}
    new["spec"]["template"]["metadata"]["annotations"] = {f"a{i}": "y" for i in range(n)}


def _no_entry(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    _unowned(old, new, owned, n)
    owned.clear()  # the GitOps entry is dropped below


def _entries(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    for side, value in ((old, "v"), (new, "w")):
        side["metadata"]["managedFields"] += [
            {"manager": "driftwarden", "operation": "Update", "apiVersion": f"v{i}", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {f"f:{value}{i}": {}}}}}
            for i in range(n)
        ]  # fmt: skip


def _planted(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    containers = {f'k:{{"image":"nginx:{i}"}}': {".": {}} for i in range(n)}
    entry = {"manager": "evil", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": containers}}}}}  # fmt: skip
    for side in (old, new):
        side["metadata"]["managedFields"].append(copy.deepcopy(entry))
    container(new)["image"] = "evil:1"


def _deep(old: dict[str, Any], new: dict[str, Any], owned: dict[str, Any], n: int) -> None:
    def chain(leaf: str) -> object:  # far below MAX_DIFF_DEPTH, yet well within json's nesting limit
        value: object = leaf
        for _ in range(100):
            value = {"x": [value]}
        return value

    old["spec"]["extra"] = {f"c{i}": chain("a") for i in range(max(n // 20, 1))}
    new["spec"]["extra"] = {f"c{i}": chain("b") for i in range(max(n // 20, 1))}
    owned["f:spec"]["f:extra"] = {}


SHAPES: dict[str, tuple[Edit, bool]] = {
    "keyed": (_env, False),
    "keyed-atomic": (lambda o, n_, f, n: _env(o, n_, f, n, leaf=True), False),
    "keyed-reordered": (_reordered, False),
    "keyed-new-items": (_new_items, False),
    "escaped-keys": (_escaped, False),
    "wide-map": (_wide_map, False),
    "set": (_set, False),
    "indexed": (_indexed, False),
    "strict-unowned": (_unowned, True),
    "no-gitops-entry": (_no_entry, False),
    "gitops-entries": (_entries, False),
    "planted-entries": (_planted, False),
    "deep": (_deep, False),
}
"""Each shape: how it grows a review, and whether it is decided in strict mode."""


def bulky(shape: str, n: int) -> Bulky:
    """A review of ``shape`` with ``n`` units, by jane (a person) in enforce mode."""
    grow, strict = SHAPES[shape]
    old = deployment()
    owned: dict[str, Any] = old["metadata"]["managedFields"][0]["fieldsV1"]
    new = copy.deepcopy(old)
    grow(old, new, owned, n)
    new["metadata"]["managedFields"][0]["fieldsV1"] = copy.deepcopy(owned)
    if not owned:
        for side in (old, new):
            side["metadata"]["managedFields"].pop(0)
    text = json.dumps(admission_review(old=old, new=new))
    review = parse_admission_review(json.loads(text))  # objects as the server parses them: no sharing
    settings = make_settings(strict=strict, gitops_identities=[AUDITOR])
    return Bulky(review, settings, len(text))


def sized(shape: str, size: int = API_SERVER_LIMIT) -> Bulky:
    """A review of ``shape`` just under ``size`` bytes (a review grows by the same bytes per unit)."""
    small, large = bulky(shape, 100), bulky(shape, 200)
    per_unit = max((large.size - small.size) / 100, 1)
    n = int(100 + (size - small.size) / per_unit)
    while (made := bulky(shape, n)).size > size:
        n = int(n * 0.98)
    return made
