"""The health vocabulary and the readers every per-kind health rule uses (auditor.health, auditor.healthcrds).

``Health`` and its statuses in gitops-engine's order, and small readers of plain dicts that make a
malformed status a ``TypeError`` (which ``resource_health`` turns into Unknown). Pure: no I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

HealthStatus = Literal["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]
HEALTH_ORDER: tuple[HealthStatus, ...] = get_args(HealthStatus)
"""Healthiest first, as gitops-engine's healthOrder (the order of the Literal above)."""

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str = ""


HEALTHY = Health("Healthy")


def field(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, None where a step is missing or not a mapping."""
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def integer(obj: Obj, *path: str) -> int:
    """The integer at ``path`` (0 when absent); TypeError for anything else, which makes health Unknown."""
    value = field(obj, *path)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{'.'.join(path)} is not an integer")
    return value


def condition_of(obj: Obj, kind: str) -> Mapping[str, Any]:
    """The status condition of type ``kind`` ({} when there is none)."""
    for cond in field(obj, "status", "conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return {}


def generation_pending(obj: Obj) -> bool:
    return integer(obj, "metadata", "generation") > integer(obj, "status", "observedGeneration")


def progressing(message: str) -> Health:
    return Health("Progressing", message)
