"""Run a sync plan: each step's resources applied and its hooks created, then waited on until healthy.

Orchestration over ``auditor.sync.waves`` (the plan), ``auditor.sync.hooks`` (what a hook is) and the
cluster adapter. A step that has a step after it, or hooks, is waited on: its resources until Healthy (or
Suspended), its hooks until they succeed or fail, at most ``timeout`` seconds. A failed hook, a Degraded
resource, a resource that failed to apply while later steps wait on it, or the time running out stops the
sync: no later step runs, nothing is pruned, the SyncFail hooks run, and the outcome's ``error`` says why.
Delete policies are honoured: BeforeHookCreation deletes an earlier run of the hook before creating it,
HookSucceeded and HookFailed delete it once it has succeeded or failed. It must not decide what to apply
(the ChangeSet and the plan did) and must not touch an object that is not a hook of this Application
except through ``apply_wave``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from auditor.health import Health, resource_health
from auditor.kube.cluster import Cluster
from auditor.objects import annotations_of
from auditor.status import ResourceResult, ResultCode
from auditor.sync.apply import SyncOutcome
from auditor.sync.changeset import ChangeSet
from auditor.sync.hooks import HOOK_ANNOTATION, HOOK_LABEL, Hook, HookPhase, deleted_after, hook_phase
from auditor.sync.replace import wait_gone
from auditor.sync.waves import Step, SyncPlan
from driftwarden.errors import DriftwardenError
from driftwarden.objectref import ObjectRef

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2
ApplyWave = Callable[[ChangeSet], Awaitable[SyncOutcome]]
Prune = Callable[[], Awaitable[SyncOutcome]]


@dataclass
class _Run:
    """One hook of one step: the object it became (its generated name) and how it ended."""

    hook: Hook
    ref: ObjectRef
    phase: HookPhase = "Running"
    message: str = ""


def _hook_result(run: _Run, hook_type: str) -> ResourceResult:
    status: ResultCode = "Synced" if run.phase == "Succeeded" else "SyncFailed"
    message = run.message or f"{run.ref.kind} {run.phase.lower()}"
    return ResourceResult(run.ref, status, message, hook_type=hook_type, hook_phase=run.phase)


async def _delete_earlier(cluster: Cluster, hook: Hook) -> None:
    """BeforeHookCreation: delete every earlier run of ``hook`` (found by its identity) and wait it out."""
    selector = f"{HOOK_LABEL}={hook.manifest['metadata']['labels'][HOOK_LABEL]}"
    for obj in await cluster.list_selected(hook.ref.group, hook.ref.kind, selector=selector):
        if annotations_of(obj).get(HOOK_ANNOTATION) != hook.identity:
            continue
        ref = ObjectRef.from_manifest(obj)
        uid = str(obj["metadata"].get("uid") or "")
        await cluster.delete(ref, propagation="Background", uid=uid or None)
        await wait_gone(cluster, ref, uid=uid)


async def _start(cluster: Cluster, hook: Hook) -> _Run:
    """Create one hook (after deleting its earlier run, per BeforeHookCreation)."""
    try:
        if "BeforeHookCreation" in hook.policies:
            await _delete_earlier(cluster, hook)
        stored = await (cluster.create(hook.manifest) if hook.generated else cluster.apply(hook.manifest))
    except DriftwardenError as exc:
        return _Run(hook, hook.ref, "Failed", f"could not create the hook: {exc}")
    return _Run(hook, ObjectRef.from_manifest(stored))


def _blocking(health: Health) -> bool:
    return health.status not in ("Healthy", "Suspended")


async def _poll(cluster: Cluster, waits: Sequence[ObjectRef], runs: Sequence[_Run]) -> tuple[str, list[str]]:
    """One look at a step: (why it failed or "", what it still waits on)."""
    pending: list[str] = []
    for ref in waits:
        health = resource_health(await cluster.get(ref))
        if health.status == "Degraded":
            return f"{ref.kind} {ref.namespace}/{ref.name} is Degraded: {health.message}", pending
        if _blocking(health):
            pending.append(f"{ref.kind} {ref.namespace}/{ref.name} {health.status} {health.message}".rstrip())
    for run in runs:
        if run.phase != "Running":
            continue
        live = await cluster.get(run.ref)
        health = resource_health(live) if live is not None else Health("Degraded", "the hook was deleted")
        run.phase, run.message = hook_phase(health), health.message
        if run.phase == "Running":
            pending.append(f"hook {run.ref.kind} {run.ref.namespace}/{run.ref.name}")
    failed = [r for r in runs if r.phase == "Failed"]
    if failed and not any(r.phase == "Running" for r in runs):  # every hook's result is known first
        run = failed[0]
        return f"hook {run.ref.kind} {run.ref.namespace}/{run.ref.name} failed: {run.message}", pending
    return "", pending


async def _wait(
    cluster: Cluster, step: Step, runs: Sequence[_Run], *, waits: Sequence[ObjectRef], seconds: float
) -> str:
    """Wait until the step's resources are healthy and its hooks done; why it failed, or ""."""
    deadline = time.monotonic() + seconds
    while True:
        failure, pending = await _poll(cluster, waits, runs)
        if failure or not pending:
            return failure
        if time.monotonic() >= deadline:
            return f"{step.label()} not done within {seconds:g}s: waiting for {'; '.join(pending)}"
        await asyncio.sleep(POLL_INTERVAL)


async def _finish(cluster: Cluster, runs: Sequence[_Run]) -> None:
    """Delete the hooks whose policy says so now that they ended (HookSucceeded, HookFailed)."""
    for run in runs:
        if deleted_after(run.hook, run.phase):
            try:
                await cluster.delete(run.ref, propagation="Background")
            except DriftwardenError as exc:
                log.warning("could not delete hook %s after it ended: %s", run.ref, exc)


async def _run_step(
    cluster: Cluster, step: Step, *, apply_wave: ApplyWave, last: bool, seconds: float
) -> tuple[list[ResourceResult], str]:
    results: list[ResourceResult] = []
    if step.actions or (step.phase == "Sync" and not step.hooks):
        applied = await apply_wave(ChangeSet(step.actions))
        results += applied.results
        if applied.failed and not last:
            return results, f"{step.label()}: {len(applied.failed)} resources failed to sync"
    runs = [await _start(cluster, hook) for hook in step.hooks]
    failure = ""
    if runs or not last:
        failure = await _wait(cluster, step, runs, waits=() if last else step.waits, seconds=seconds)
    await _finish(cluster, runs)
    results += [_hook_result(run, step.phase) for run in runs]
    return results, failure


async def run_plan(
    cluster: Cluster, plan: SyncPlan, *, apply_wave: ApplyWave, prune: Prune, seconds: float
) -> SyncOutcome:
    """Carry out ``plan``: each step in turn, then ``prune`` once the Sync phase is done; on a failure,
    the SyncFail hooks instead of the rest. ``apply_wave`` applies one step's resource actions."""
    results: list[ResourceResult] = []
    failure = ""
    post_sync = next((i for i, s in enumerate(plan.steps) if s.phase == "PostSync"), len(plan.steps))
    for index, step in enumerate(plan.steps):
        if index == post_sync:
            results += (await prune()).results
        step_results, failure = await _run_step(
            cluster, step, apply_wave=apply_wave, last=index == len(plan.steps) - 1, seconds=seconds
        )
        results += step_results
        if failure:
            break
    if failure:
        for step in plan.sync_fail:
            ran, _ = await _run_step(cluster, step, apply_wave=apply_wave, last=True, seconds=seconds)
            results += ran
        return SyncOutcome(tuple(results), error=failure)
    if post_sync == len(plan.steps):
        results += (await prune()).results
    return SyncOutcome(tuple(results))
