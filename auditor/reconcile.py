"""One reconcile pass of one Application: revision → render → compare → sync (per policy) → status, events.

Orchestration. Errors end up where a user looks: a render or revision problem is a ``SyncFailed``
condition naming the file and line, an unreachable remote a ``GitUnreachable`` condition (the last good
revision stays in use), and in every such failure nothing is applied and nothing is pruned. One object
the API server refuses fails alone (auditor.diff.failures): the others are compared and synced.

Spans: ``auditor.reconcile`` with children, in order, ``git.fetch`` (credentials, fetch, resolve),
``render``, ``diff``; a syncing pass adds ``apply``, ``prune`` (only when something is to be deleted) and
a second ``diff`` that records what the cluster now says; every compared pass ends with ``health`` (the
aggregate verdict written to status). When a step raises (Git, render, comparison), its span and the root
are in ERROR and no later step runs.

Its collaborators come in one ``AuditorClients`` bundle; what the watch-driven heal must know (what Git
wants, our own writes) it writes into the shared ``Ledger``, and it reads the fights the heal paused there.
It must not call the heal, and must not apply or prune anything in a pass that failed before comparing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from auditor.application import Application, parse_application
from auditor.clients import AuditorClients
from auditor.diff.compare import Comparison, DryRunCache, compare
from auditor.health import Health
from auditor.holdkeeping import current_holds, end_hold
from auditor.holds import ended, marked
from auditor.ledger import Ledger
from auditor.notify import transition_events
from auditor.objects import AppKey
from auditor.refusals import refusals
from auditor.source.resolve import Rendered, render_revision, repository_credentials, resolve_revision
from auditor.specfields import InvalidSpecError
from auditor.status import (
    COMPARISON_ERROR,
    GIT_UNREACHABLE,
    INVALID_SPEC,
    PRUNE_REFUSED,
    SHARED_RESOURCE,
    SYNC_FAILED,
    OperationPhase,
    append_history,
    build_status,
    changeset_conditions,
    clear_condition,
    operation_state,
    resource_entries,
    set_condition,
)
from auditor.sync.apply import SyncOutcome, apply_all, ensure_namespace, prune_all
from auditor.sync.changeset import ChangeSet
from auditor.sync.hooks import Hook, Split, split_render
from auditor.sync.phases import run_plan
from auditor.sync.takeover import STRICT_OPTION
from auditor.sync.waves import manifests_digest, plan_sync, resource_waves
from driftwarden.bounded import SPAN_LIMIT, shorten
from driftwarden.contract import rfc3339
from driftwarden.errors import DriftwardenError, GitUnreachableError, PermanentError, TemporaryError
from driftwarden.objectref import ResourceKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassResult:
    """What a pass found and did; ``error`` is set when it stopped before comparing."""

    status: Mapping[str, Any]
    comparison: Comparison | None = None
    outcome: SyncOutcome | None = None
    error: DriftwardenError | None = None


def last_digest(previous: Mapping[str, Any]) -> str:
    """The digest of what the last sync rendered (``operationState.syncResult.manifestsDigest``)."""
    return str(((previous.get("operationState") or {}).get("syncResult") or {}).get("manifestsDigest") or "")


def last_phase(previous: Mapping[str, Any]) -> str:
    return str((previous.get("operationState") or {}).get("phase") or "")


def should_sync(
    comparison: Comparison,
    previous: Mapping[str, Any],
    *,
    hooks_due: bool = False,
    hooks_failed: bool = False,
) -> bool:
    """Automated sync applies a new revision; it heals live drift only with ``selfHeal`` (as Argo CD).

    ``hooks_due``: the Application has hooks and this render was not synced yet, so a sync (running them)
    is due even when no resource differs. ``hooks_failed``: it has hooks and the last sync of this very
    render failed; as Argo CD, an automated sync does not try it again (a later sync without its hooks
    would apply what a failed PreSync hook was to guard); a manual sync or a new render does.
    """
    automated = comparison.app.sync_policy.automated
    if automated is not None and hooks_due:
        return True
    # A refused object is a change that failed: syncing reports it (SyncFailed) and retries per policy.
    if automated is None or hooks_failed or not (comparison.changeset.has_changes or comparison.failures):
        return False
    last = ((previous.get("sync") or {}).get("revision")) or ""
    return automated.self_heal or last != comparison.revision or not previous.get("history")


class Reconciler:
    """Runs passes for Applications with one bundle of clients; safe to share between tasks.

    It writes what each compared pass wants into ``ledger`` (before anything is applied) and each object
    a sync stores; a sync leaves alone what the ledger says is paused.
    """

    def __init__(self, clients: AuditorClients, ledger: Ledger) -> None:
        self.clients = clients
        self.ledger = ledger
        self.tracer = clients.tracer
        self.dry_runs = DryRunCache()
        self._comparing = asyncio.Semaphore(clients.settings.comparisons_at_once)

    async def render(self, app: Application, *, revision: str | None = None) -> Rendered:
        """Resolve the revision (span ``git.fetch``), then render that commit (span ``render``)."""
        with self.tracer.start_as_current_span("git.fetch") as span:
            span.set_attribute("driftwarden.app", str(app.key))
            settings = self.clients.settings
            creds = await repository_credentials(
                self.clients.api, app.source.repo_url, namespace=settings.install_namespace
            )
            resolved = await resolve_revision(app, settings=settings, credentials=creds, revision=revision)
            span.set_attribute("driftwarden.revision", resolved.revision)
        with self.tracer.start_as_current_span("render") as span:
            span.set_attributes({"driftwarden.app": str(app.key), "driftwarden.revision": resolved.revision})
            rendered = await render_revision(app, resolved, settings=self.clients.settings)
            span.set_attributes(
                {
                    "driftwarden.source.type": rendered.result.source_type,
                    "driftwarden.manifests": len(rendered.result.manifests),
                }
            )
            return rendered

    def split(self, app: Application, rendered: Rendered) -> Split:
        """The render's hooks apart from its resources (``auditor.sync.hooks``)."""
        return split_render(
            rendered.result.manifests, app=app.key, namespace=app.destination.namespace,
            cluster_scoped=self.clients.cluster.mapper.is_cluster_scoped,
        )  # fmt: skip

    async def compare(
        self, app: Application, rendered: Rendered, previous: Mapping[str, Any], *, prune: bool = False
    ) -> Comparison:
        """Compare the render's resources (never its hooks) with the cluster (span ``diff``)."""
        with self.tracer.start_as_current_span("diff") as span:
            resources = self.split(app, rendered).resources
            result = await compare(
                self.clients.cluster, app, revision=rendered.revision, manifests=resources,
                recorded_resources=previous.get("resources") or [], prune_requested=prune,
                cache=self.dry_runs,
            )  # fmt: skip
            span.set_attribute("driftwarden.sync", result.sync_status)
            return result

    async def run(
        self,
        obj: Mapping[str, Any],
        *,
        manual: bool = False,
        revision: str | None = None,
        prune: bool = False,
    ) -> PassResult:
        """One pass; ``manual`` syncs whatever differs (as ``driftwarden app sync``), else per the policy."""
        started_pass = time.perf_counter()
        with self.tracer.start_as_current_span("auditor.reconcile") as span:
            meta = obj.get("metadata") or {}
            span.set_attribute("driftwarden.app", f"{meta.get('namespace')}/{meta.get('name')}")
            previous: Mapping[str, Any] = obj.get("status") or {}
            try:
                app = parse_application(obj)
                if reasons := refusals(app):
                    raise InvalidSpecError("; ".join(reasons))
                async with self._comparing:  # bounded: each holds all of its Application's objects
                    rendered = await self.render(app, revision=revision)
                    hooks = self.split(app, rendered).hooks
                    comparison = await self.compare(app, rendered, previous, prune=prune)
            except DriftwardenError as exc:
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, shorten(str(exc), SPAN_LIMIT)))
                status = self._failed_status(previous, exc)
                await self._write(meta, status, before=obj.get("status") or {})
                self._measure(meta, status, started_pass)
                return PassResult(status, error=exc)
            self.ledger.want(app, comparison.desired)  # before any apply: a heal never heals toward the past
            outcome = None
            digest = manifests_digest(rendered.revision, rendered.result.manifests)
            # Hooks run once per sync of a render (a new revision or render, or a manual sync), not per pass.
            hooks_due = bool(hooks) and digest != last_digest(previous)
            hooks_failed = bool(hooks) and not hooks_due and last_phase(previous) == "Failed"
            if manual or should_sync(comparison, previous, hooks_due=hooks_due, hooks_failed=hooks_failed):
                started = self.clients.clock()
                outcome = await self._sync(comparison, hooks if manual or hooks_due else ())
                comparison = await self.compare(app, rendered, previous, prune=prune)
                await self._announce(obj, outcome)
                done = [r.status for r in outcome.results]
                log.info(
                    "sync app=%s revision=%s result=%s applied=%d pruned=%d failed=%d manual=%s", app.key,
                    comparison.revision, comparison.sync_status, done.count("Synced"), done.count("Pruned"),
                    done.count("SyncFailed"), manual,
                )  # fmt: skip  # one event line per sync (driftwarden.logs)
                state = self._operation(comparison, outcome, started, revision=revision, digest=digest)
                previous = {**previous, "operationState": state}
            status = self._status(comparison, rendered, previous, outcome, health=self._health(comparison))
            span.set_attribute("driftwarden.sync", comparison.sync_status)
            span.set_attribute("driftwarden.revision", comparison.revision)
            await self._write(meta, status, before=obj.get("status") or {})
            self._measure(meta, status, started_pass)
            return PassResult(status, comparison, outcome)

    async def _sync(self, comparison: Comparison, hooks: tuple[Hook, ...]) -> SyncOutcome:
        """Run the phases and waves (``auditor.sync.phases``): each wave's resources that drifted applied
        (span ``apply``) and its ``hooks`` run, then what left Git pruned (span ``prune``)."""
        cluster, app, changeset = self.clients.cluster, comparison.app, comparison.changeset
        policy = app.sync_policy
        held = await self._held(comparison)
        manifests, live = comparison.desired_by_key(), comparison.live_by_key()
        if policy.create_namespace:  # before any hook: a PreSync hook runs in it too
            await ensure_namespace(cluster, app.destination.namespace, manifests=manifests)

        async def apply_wave(wave: ChangeSet) -> SyncOutcome:
            with self.tracer.start_as_current_span("apply") as span:
                applying = await apply_all(
                    cluster, wave, held=held, manifests=manifests, live=live,
                    ignore=app.ignore_differences if policy.respect_ignore_differences else (),
                    strict=policy.enabled(STRICT_OPTION), ledger=self.ledger, policy=policy,
                )  # fmt: skip
                span.set_attribute("driftwarden.applied", sum(r.status == "Synced" for r in applying.results))
                return applying

        async def prune() -> SyncOutcome:
            if not changeset.of_type("prune"):
                return await prune_all(cluster, changeset)  # skips only: results, and no request
            with self.tracer.start_as_current_span("prune") as span:
                pruning = await prune_all(cluster, changeset, propagation=policy.prune_propagation)
                span.set_attribute("driftwarden.pruned", sum(r.status == "Pruned" for r in pruning.results))
                return pruning

        plan = plan_sync(changeset, waves=resource_waves(comparison.desired), hooks=hooks)
        seconds = self.clients.settings.wave_timeout
        return await run_plan(cluster, plan, apply_wave=apply_wave, prune=prune, seconds=seconds)

    async def _held(self, comparison: Comparison) -> dict[ResourceKey, str]:
        """The objects on a break-glass hold, with why; holds that ended (expired, Git changed the
        fields, released, left Git) are ended here, so the sync heals those objects."""
        app = comparison.app
        holds = await current_holds(self.clients, app.key)
        desired, live, held = comparison.desired_by_key(), comparison.live_by_key(), {}
        for key, hold in holds.items():
            manifest, obj = desired.get(key), live.get(key)
            now = self.clients.clock()
            reason = "it left Git" if manifest is None else ended(hold, now=now, live=obj, manifest=manifest)
            if reason:
                await end_hold(self.clients, self.ledger, app.key, hold, reason=reason, unmark=marked(obj))
            else:
                held[key] = f"on hold: break-glass edit by {hold.user} until {rfc3339(hold.until)}"
        return held

    def _health(self, comparison: Comparison) -> Health:
        """The Application's health: the worst of its resources' (span ``health``)."""
        with self.tracer.start_as_current_span("health") as span:
            health = comparison.health
            unhealthy = sum(h.status != "Healthy" for h in comparison.healths.values())
            span.set_attributes(
                {
                    "driftwarden.health": health.status,
                    "driftwarden.resources": len(comparison.healths),
                    "driftwarden.health.unhealthy": unhealthy,
                }
            )
            return health

    def _measure(self, meta: Mapping[str, Any], status: Mapping[str, Any], started: float) -> None:
        self.clients.instruments.record_reconcile(
            f"{meta.get('namespace')}/{meta.get('name')}", seconds=time.perf_counter() - started,
            sync=str((status.get("sync") or {}).get("status") or "Unknown"),
            health=str((status.get("health") or {}).get("status") or "Unknown"),
        )  # fmt: skip

    def _operation(
        self,
        comparison: Comparison,
        outcome: SyncOutcome,
        started: dt.datetime,
        *,
        revision: str | None,
        digest: str,
    ) -> dict[str, Any]:
        failed, source = outcome.failed, comparison.app.source
        phase: OperationPhase = "Failed" if failed or outcome.error else "Succeeded"
        message = f"{len(failed)} resources failed to sync" if failed else "successfully synced"
        message = outcome.error or message
        return operation_state(
            phase=phase, message=message, revision=comparison.revision, results=outcome.results,
            started_at=started, finished_at=self.clients.clock(), manifests_digest=digest,
            source=dataclasses.replace(source, target_revision=revision or source.target_revision),
        )  # fmt: skip

    def _status(
        self,
        comparison: Comparison,
        rendered: Rendered,
        previous: Mapping[str, Any],
        outcome: SyncOutcome | None,
        *,
        health: Health,
    ) -> dict[str, Any]:
        now = self.clients.clock()
        conditions = [dict(c) for c in previous.get("conditions") or [] if isinstance(c, Mapping)]
        for cleared in (COMPARISON_ERROR, SYNC_FAILED, INVALID_SPEC):
            conditions = clear_condition(conditions, cleared)
        if rendered.unreachable:
            conditions = set_condition(conditions, type=GIT_UNREACHABLE, message=rendered.unreachable, at=now)
        else:
            conditions = clear_condition(conditions, GIT_UNREACHABLE)
        conditions = changeset_conditions(conditions, comparison.changeset, at=now)
        if outcome is not None and (outcome.failed or outcome.error):
            reasons = [outcome.error] if outcome.error else []
            failed = shorten("; ".join([*reasons, *(f"{r.ref}: {r.message}" for r in outcome.failed)]))
            conditions = set_condition(conditions, type=SYNC_FAILED, message=failed, at=now)
        history = list(previous.get("history") or [])
        if outcome is not None and outcome.changed:
            history = append_history(
                history, revision=comparison.revision, source=comparison.app.source, at=now,
                limit=comparison.app.revision_history_limit,
            )  # fmt: skip
        return build_status(
            sync_status=comparison.sync_status,
            revision=comparison.revision,
            health=health,
            resources=resource_entries(comparison.diffs, comparison.healths, comparison.messages),
            history=history,
            conditions=conditions,
            operation=previous.get("operationState"),
        )

    def _failed_status(self, previous: Mapping[str, Any], exc: DriftwardenError) -> dict[str, Any]:
        """Keep everything the last good pass recorded; add the condition that says what went wrong."""
        kind = GIT_UNREACHABLE if isinstance(exc, GitUnreachableError) else SYNC_FAILED
        if isinstance(exc, InvalidSpecError):
            kind = INVALID_SPEC
        elif not isinstance(exc, PermanentError | TemporaryError):
            kind = COMPARISON_ERROR
        conditions = [dict(c) for c in previous.get("conditions") or [] if isinstance(c, Mapping)]
        # Found by the last comparison, which no longer stands: a stale one beside the failure misleads.
        conditions = clear_condition(clear_condition(conditions, PRUNE_REFUSED), SHARED_RESOURCE)
        status = {k: v for k, v in previous.items() if k != "conditions"}
        at = self.clients.clock()
        status["conditions"] = set_condition(conditions, type=kind, message=shorten(str(exc)), at=at)
        sync = dict(status.get("sync") or {})
        sync["status"] = "Unknown"
        status["sync"] = sync
        return status

    async def _write(
        self, meta: Mapping[str, Any], status: Mapping[str, Any], *, before: Mapping[str, Any]
    ) -> None:
        key = AppKey(str(meta.get("namespace", "")), str(meta.get("name", "")))
        notifier = self.clients.notifier
        if notifier is not None:
            for event in transition_events(key, before, status):
                notifier.notify(event)  # never waits: a slow endpoint cannot hold up a pass
        await self.clients.store.patch_application_status(key, dict(status))

    async def _announce(self, obj: Mapping[str, Any], outcome: SyncOutcome) -> None:
        events = self.clients.events
        if outcome.failed or outcome.error:
            reasons = [outcome.error] if outcome.error else []
            message = "; ".join([*reasons, *(f"{r.ref}: {r.message}" for r in outcome.failed)])
            await events.record_event(obj, reason="SyncFailed", message=message, type="Warning")
        pruned = [str(r.ref) for r in outcome.results if r.status == "Pruned"]
        if pruned:
            await events.record_event(obj, reason="Pruned", message=", ".join(pruned))
        synced = [str(r.ref) for r in outcome.results if r.status == "Synced"]
        if synced:
            await events.record_event(obj, reason="Synced", message=f"applied {', '.join(synced)}")
