"""Plan a sync in phases and waves, as Argo CD orders one: PreSync → Sync → PostSync, waves within each.

A step is one wave of one phase: the ordinary resources' actions of that wave (Sync phase only; the wave is
``argocd.argoproj.io/sync-wave``, default 0) and the hooks of that phase and wave. Steps run in order of
phase, then wave (negative first); inside a step resources keep the ChangeSet's stage and kind order and
hooks follow in kind order, then name. SyncFail hooks are a plan of their own, run when a step fails. Without
hooks to run and with every resource in one wave the plan is one step, the sync of old. Pure: a ChangeSet,
waves and hooks in, a frozen ``SyncPlan`` out; no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from auditor.sync.changeset import KIND_ORDER, Action, ChangeSet
from auditor.sync.hooks import Hook, HookType, wave_of
from driftwarden.objectref import ObjectRef, ResourceKey

Phase = Literal["PreSync", "Sync", "PostSync", "SyncFail"]
PHASES: tuple[Phase, ...] = ("PreSync", "Sync", "PostSync")
WAITED = ("create", "update", "unchanged")
"""Actions whose object exists after the step and is waited on until healthy before the next step."""


@dataclass(frozen=True)
class Step:
    """One wave of one phase: resource actions (in ChangeSet order) and hooks to create, then wait on."""

    phase: Phase
    wave: int
    actions: tuple[Action, ...] = ()
    hooks: tuple[Hook, ...] = ()

    @property
    def waits(self) -> tuple[ObjectRef, ...]:
        """The resources that must be healthy before the next step starts."""
        return tuple(a.ref for a in self.actions if a.type in WAITED)

    def label(self) -> str:
        return f"{self.phase} wave {self.wave}"


@dataclass(frozen=True)
class SyncPlan:
    """The steps of a sync, in order, and the SyncFail hooks' steps (run only when a step fails)."""

    steps: tuple[Step, ...]
    sync_fail: tuple[Step, ...] = ()

    @property
    def hooks(self) -> tuple[Hook, ...]:
        return tuple(h for s in (*self.steps, *self.sync_fail) for h in s.hooks)


def resource_waves(desired: Iterable[Mapping[str, Any]]) -> dict[ResourceKey, int]:
    """Each desired resource's wave (``argocd.argoproj.io/sync-wave``; checked when the render was split)."""
    return {ObjectRef.from_manifest(m).key: wave_of(m) for m in desired}


def manifests_digest(revision: str, manifests: Iterable[Mapping[str, Any]]) -> str:
    """A digest of one render at one revision: an automated sync runs hooks once per digest."""
    text = json.dumps([revision, list(manifests)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _hook_order(hook: Hook) -> tuple[int, str, str]:
    rank = KIND_ORDER.index(hook.ref.kind) if hook.ref.kind in KIND_ORDER else len(KIND_ORDER)
    return (rank, hook.ref.namespace, hook.ref.name)


def _hook_steps(hooks: Iterable[Hook], phase: HookType) -> dict[int, list[Hook]]:
    by_wave: dict[int, list[Hook]] = {}
    for hook in hooks:
        if phase in hook.types:
            by_wave.setdefault(hook.wave, []).append(hook)
    return by_wave


def plan_sync(
    changeset: ChangeSet,
    *,
    waves: Mapping[ResourceKey, int],
    hooks: Sequence[Hook] = (),
) -> SyncPlan:
    """The steps that carry out ``changeset`` (its applying actions; prunes come after the Sync phase)
    with ``hooks``. ``waves``: each desired resource's wave (absent: 0)."""
    applying = [a for a in changeset.actions if not a.pruning]
    steps: list[Step] = []
    for phase in PHASES:
        hooks_by_wave = _hook_steps(hooks, phase)
        actions_by_wave: dict[int, list[Action]] = {}
        if phase == "Sync":
            for action in applying:
                actions_by_wave.setdefault(waves.get(action.ref.key, 0), []).append(action)
        for wave in sorted({*hooks_by_wave, *actions_by_wave}):
            step_hooks = tuple(sorted(hooks_by_wave.get(wave, ()), key=_hook_order))
            steps.append(Step(phase, wave, tuple(actions_by_wave.get(wave, ())), step_hooks))
    if not steps:
        steps.append(Step("Sync", 0))
    fail_by_wave = _hook_steps(hooks, "SyncFail")
    sync_fail = tuple(
        Step("SyncFail", wave, (), tuple(sorted(fail_by_wave[wave], key=_hook_order)))
        for wave in sorted(fail_by_wave)
    )
    return SyncPlan(tuple(steps), sync_fail)
