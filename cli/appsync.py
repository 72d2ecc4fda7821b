"""What the reconciling ``driftwarden app`` commands do: ``diff``, ``sync`` and ``rollback``.

Orchestration only: flags (``cli.app``) → a client acting as the caller (or ``--as`` someone) → the
auditor's ``Reconciler`` for one pass → ``appview`` text (shown by ``cli.apprun``). ``diff`` renders and
compares without writing anything (no status, no events); ``sync`` and ``rollback`` run a manual reconcile
pass, whose writes the admission webhook judges like any other (hence the ``--as`` hint on a denial).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Coroutine, Mapping
from typing import Any

from kubernetes_asyncio import client

from auditor.application import parse_application
from auditor.clients import AuditorClients
from auditor.holds import from_entry
from auditor.kube.applications import ApplicationStore
from auditor.kube.cluster import Cluster
from auditor.ledger import Ledger
from auditor.objects import AppKey
from auditor.reconcile import PassResult, Reconciler
from auditor.settings import AuditorSettings
from auditor.source.renderers import RenderTools
from auditor.status import result_entry
from cli import appview, colour
from cli.apprun import application, emit, note, show
from cli.flags import Command
from cli.kube import connect
from driftwarden import contract
from driftwarden.errors import ConfigError, KubeError
from driftwarden.objectref import ResourceKey
from driftwarden.settings import cache_root, helm_path, kubectl_path


def _admission_hint(args: argparse.Namespace) -> str:
    who = f"as {args.as_user}" if args.as_user else "as you"
    gitops = contract.auditor_identity(args.namespace)
    return (
        f"hint: the admission webhook judged these requests, made {who}; with the guard in enforce mode, "
        f"run `driftwarden app {args.app_command} {args.name} --as {gitops}`"
    )


def _writing(args: argparse.Namespace, work: Coroutine[Any, Any, int]) -> int:
    """Run ``work``; a webhook's denial gets a hint about ``--as`` (the message alone says "change Git")."""
    try:
        return asyncio.run(work)
    except KubeError as exc:
        if exc.status != 403 or "admission webhook" not in str(exc):
            raise
        raise KubeError(f"{exc}\n{_admission_hint(args)}", status=exc.status, reason=exc.reason) from exc


def _stop_on_refusals(failures: Mapping[ResourceKey, str]) -> None:
    """KubeError when the API server refused any object's dry run: the difference is not known in full,
    and a command about to write stops before it changed anything (a webhook's denial gets the hint)."""
    if not failures:
        return
    lines = "\n".join(f"  {k.kind} {k.namespace}/{k.name}: {reason}" for k, reason in failures.items())
    denied = any("admission webhook" in reason for reason in failures.values())
    raise KubeError(
        f"the API server refused the dry run of {len(failures)} object(s):\n{lines}",
        status=403 if denied else 422,
        reason="Forbidden" if denied else "Invalid",
    )


def _reconciler(api: client.ApiClient, env: Mapping[str, str], *, namespace: str) -> Reconciler:
    """A Reconciler for one pass from the command line, with a ledger of its own (no heal runs beside it)."""
    tools = RenderTools(kubectl=kubectl_path(env), helm=helm_path(env))
    settings = AuditorSettings(git_cache=cache_root(env) / "git", tools=tools, install_namespace=namespace)
    return Reconciler(AuditorClients.build(api, settings=settings), Ledger())


def run_diff(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> int:
        async with connect(args, env, as_user=args.as_user) as api:
            obj = await application(ApplicationStore(api), args.namespace, args.name)
            reconciler = _reconciler(api, env, namespace=args.namespace)
            app = parse_application(obj)
            # render + compare only: Reconciler.run would write the status (and sync per the policy).
            rendered = await reconciler.render(app, revision=args.revision)
            comparison = await reconciler.compare(app, rendered, obj.get("status") or {})
        if rendered.unreachable:
            note(f"warning: {rendered.unreachable}")
        show(appview.diff_view(comparison.diffs, comparison.failures), env, paint=colour.diff)
        _stop_on_refusals(comparison.failures)
        differing = [d for d in comparison.diffs if not d.in_sync]
        at = f"{args.revision or app.source.target_revision} ({appview.short(comparison.revision)})"
        if differing:
            note(f"{len(differing)} of {len(comparison.diffs)} resources differ from Git at {at}")
            return 1
        note(f"in sync with Git at {at}: {len(comparison.diffs)} resources")
        return 0

    return _writing(args, go())


def _report(
    args: argparse.Namespace, env: Mapping[str, str], obj: Mapping[str, Any], result: PassResult
) -> int:
    """Print a pass's per-resource results and the final state; 1 when any resource failed."""
    if result.error is not None:
        raise result.error
    outcome = result.outcome
    results = [result_entry(r) for r in (outcome.results if outcome else ())]
    show(
        appview.results_view(results) if results else "Nothing to change: every resource matched Git.\n", env
    )
    show("\n" + appview.summary_view({**obj, "status": result.status}), env)
    failed = outcome.failed if outcome is not None else ()
    if any("admission webhook" in r.message for r in failed):
        note(_admission_hint(args))
    stopped = outcome is not None and bool(outcome.error)  # a hook failed or a wave was not healthy in time
    return 1 if failed or stopped else 0


def run_sync(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> int:
        async with connect(args, env, as_user=args.as_user) as api:
            obj = await application(ApplicationStore(api), args.namespace, args.name)
            reconciler = _reconciler(api, env, namespace=args.namespace)
            result = await reconciler.run(obj, manual=True, revision=args.revision, prune=args.prune)
        return _report(args, env, obj, result)

    return _writing(args, go())


def _history_entry(obj: Mapping[str, Any], wanted: int) -> Mapping[str, Any]:
    meta = obj.get("metadata") or {}
    history = [h for h in (obj.get("status") or {}).get("history") or [] if isinstance(h, Mapping)]
    for entry in history:
        if entry.get("id") == wanted:
            return entry
    ids = ", ".join(str(h.get("id")) for h in history) or "none: it has not been deployed yet"
    raise ConfigError(
        f"Application {meta.get('namespace')}/{meta.get('name')} has no history entry {wanted} "
        f"(its history IDs: {ids}; see `driftwarden app history {meta.get('name')}`)"
    )


async def _turn_off_automated(store: ApplicationStore, obj: dict[str, Any]) -> dict[str, Any]:
    """Switch automated sync off (it would undo the rollback) and say how to switch it back on."""
    meta = obj["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = obj.get("spec") or {}
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if automated is None:
        emit(f"Automated sync of {namespace}/{name} is already off.\n\n")
        return obj
    updated = await store.patch_application_spec(
        AppKey(namespace, name), {"syncPolicy": {"automated": None}}, resource_version=meta["resourceVersion"]
    )
    patch = json.dumps({"spec": {"syncPolicy": {"automated": automated}}}, separators=(",", ":"))
    target = (spec.get("source") or {}).get("targetRevision")
    emit(
        f"Automated sync of {namespace}/{name} is now off: it would undo the rollback at the next pass.\n"
        f"To turn it back on (the Application then returns to {target}):\n"
        f"  kubectl -n {namespace} patch {contract.APPLICATION_CRD_NAME} {name} --type merge -p '{patch}'\n\n"
    )
    return updated


def run_rollback(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> int:
        async with connect(args, env, as_user=args.as_user) as api:
            store = ApplicationStore(api)
            obj = await application(store, args.namespace, args.name)
            entry = _history_entry(obj, args.id)
            current = ((obj.get("spec") or {}).get("source") or {}).get("path")
            deployed = (entry.get("source") or {}).get("path")
            if deployed is not None and deployed != current:
                note(f"warning: entry {args.id} was deployed from path {deployed}; the Application now "
                      f"points at {current}, and that path is what gets rendered")  # fmt: skip
            reconciler = _reconciler(api, env, namespace=args.namespace)
            revision = str(entry.get("revision"))
            # Dry-run the rollback as the caller first: when RBAC or the admission webhook refuses it,
            # it stops here, before automated sync is turned off (nothing has changed).
            app = parse_application(obj)
            rendered = await reconciler.render(app, revision=revision)
            comparison = await reconciler.compare(app, rendered, obj.get("status") or {})
            _stop_on_refusals(comparison.failures)
            obj = await _turn_off_automated(store, obj)
            result = await reconciler.run(obj, manual=True, revision=revision, prune=args.prune)
        code = _report(args, env, obj, result)
        emit(f"Rolled back {args.namespace}/{args.name} to history entry {args.id}: revision {revision} "
               f"(first deployed at {entry.get('deployedAt')}).\n")  # fmt: skip
        return code

    return _writing(args, go())


def _chosen_holds(obj: Mapping[str, Any], resource: str | None) -> list[Mapping[str, Any]]:
    meta = obj.get("metadata") or {}
    holds = [h for h in (obj.get("status") or {}).get("holds") or [] if isinstance(h, Mapping)]
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    if not holds:
        raise ConfigError(f"Application {where} has no break-glass holds (see `driftwarden app get`)")
    if resource is None:
        return holds
    kind, _, name = resource.partition("/")
    chosen = [h for h in holds if str(h.get("kind", "")).lower() == kind.lower() and h.get("name") == name]
    if not chosen:
        held = ", ".join(f"{h.get('kind')}/{h.get('name')}" for h in holds)
        raise ConfigError(f"Application {where} holds no {resource} (its holds: {held})")
    return chosen


def run_release(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Remove the ``driftwarden.io/hold`` annotation of each chosen object; the auditor ends the hold
    (an Event and a notification) and heals the object."""

    async def go() -> int:
        async with connect(args, env, as_user=args.as_user) as api:
            obj = await application(ApplicationStore(api), args.namespace, args.name)
            cluster, unmark = Cluster(api), {"metadata": {"annotations": {contract.ANNOTATION_HOLD: None}}}
            for hold in filter(None, map(from_entry, _chosen_holds(obj, args.resource))):
                await cluster.merge_patch(hold.ref, unmark)
                until = contract.rfc3339(hold.until)
                emit(f"Released {hold.ref} (held for {hold.user or 'someone'} until {until}); "
                     "the auditor heals it now.\n")  # fmt: skip
        return 0

    return _writing(args, go())


COMMANDS: Mapping[str, Command] = {
    "diff": run_diff, "sync": run_sync, "rollback": run_rollback, "release": run_release,
}  # fmt: skip
