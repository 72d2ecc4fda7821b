"""``driftwarden app list|get|diff|sync|history|rollback|release``: Applications from the command line.

Orchestration only, in the manner of ``argocd app`` and kubectl: flags → a client acting as the caller
(or ``--as`` someone) → ``auditor`` (ApplicationStore, Reconciler) → ``appview`` text. ``diff`` renders
and compares without writing anything (no status, no events); ``sync`` and ``rollback`` run a manual
reconcile pass. Exit codes: 0 done (``diff``: in sync), 1 ``diff`` found differences or a ``sync`` left a
resource failed, 2 an error (via ``DriftwardenError`` in ``cli.main``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
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
from auditor.status import ref_fields
from cli import appconnect, appview
from driftwarden import contract
from driftwarden.errors import ConfigError, KubeError

GITOPS_USER = appconnect.GITOPS_USER
DESCRIPTION = f"""\
Inspect, diff, sync and roll back driftwarden Applications, like `argocd app` and kubectl.

Every request is made as the caller (the kubeconfig's user) or, with --as USER, as USER by
impersonation. diff only reads and dry-runs; sync and rollback write the rendered objects as the
caller. The admission webhook judges those writes, and diff's server-side dry runs, like any other
request: with the webhook in enforce mode, run diff, sync and rollback as the GitOps identity, e.g.
  driftwarden app sync NAME --as {GITOPS_USER}
(impersonating needs the `impersonate` permission on that service account).

exit codes: 0 done (diff: in sync); 1 diff found differences, or sync/rollback left a resource failed;
2 error (unknown Application, bad kubeconfig, unreachable API server or Git, render failure)."""


def _output(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument("-o", "--output", choices=choices, help=f"output format: {', '.join(choices)}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "app", description=DESCRIPTION,
        help="Applications: list, get, diff, sync, history, rollback, release",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(title="app commands", metavar="COMMAND", required=True)
    common = appconnect.common_flags()

    def add(name: str, help: str, run: Any) -> argparse.ArgumentParser:
        cmd = commands.add_parser(name, help=help, description=help, parents=[common])
        cmd.set_defaults(run=run, app_command=name)
        return cmd

    listing = add("list", "list Applications: NAME SYNC HEALTH REVISION AGE", run_list)
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="list them in every namespace")
    _output(listing, "json", "yaml", "wide")
    get = add("get", "show an Application: source, sync, health, conditions and its resources", run_get)
    get.add_argument("name", help="Application name")
    _output(get, "json", "yaml", "wide")
    diff = add("diff", "show how the cluster differs from Git (exit 1 if it does); writes nothing", run_diff)
    diff.add_argument("name", help="Application name")
    diff.add_argument("--revision", help="compare with this branch, tag or commit (default: its target)")
    sync = add("sync", "apply what Git says now, as the caller (see --as)", run_sync)
    sync.add_argument("name", help="Application name")
    sync.add_argument("--revision", help="sync this branch, tag or commit (default: its target)")
    sync.add_argument("--prune", action="store_true", help="also delete objects that left Git")
    history = add("history", "list the revisions deployed: ID REVISION DEPLOYED-AT", run_history)
    history.add_argument("name", help="Application name")
    _output(history, "json", "yaml", "wide")
    rollback = add(
        "rollback", "dry-run, then turn automated sync off and sync the revision of a history entry",
        run_rollback,
    )  # fmt: skip
    rollback.add_argument("name", help="Application name")
    rollback.add_argument("id", type=int, help="history ID to roll back to (see `app history`)")
    rollback.add_argument("--prune", action="store_true", help="also delete objects that left Git")
    release = add("release", "end break-glass holds now: the auditor heals those objects", run_release)
    release.add_argument("name", help="Application name")
    release.add_argument("--resource", metavar="KIND/NAME", help="only this object (default: every hold)")


async def _application(store: ApplicationStore, namespace: str, name: str) -> dict[str, Any]:
    obj = await store.get_application(AppKey(namespace, name))
    if obj is None:
        raise KubeError(
            f'Application "{name}" not found in namespace {namespace} '
            f"(see `driftwarden app list -n {namespace}`, or -A for every namespace)",
            status=404, reason="NotFound",
        )  # fmt: skip
    return obj


def _print(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


def run_list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> list[dict[str, Any]]:
        async with appconnect.connect(args, env) as api:
            try:
                return await ApplicationStore(api).list_applications(
                    None if args.all_namespaces else args.namespace
                )
            except KubeError as exc:
                if exc.status != 404:
                    raise
                raise KubeError(f"the {contract.APPLICATION_CRD_NAME} CRD is not installed in this cluster "
                                "(kubectl apply -f manifests/crd/)", status=404) from exc  # fmt: skip

    items = asyncio.run(go())
    if args.output in ("json", "yaml"):
        _print(appview.dump(appview.as_list(items), args.output))
    elif not items:
        where = "any namespace" if args.all_namespaces else f"namespace {args.namespace}"
        _note(f"No Applications found in {where}.")
    else:
        now = dt.datetime.now(dt.UTC)
        _print(appview.list_view(items, now=now, wide=args.output == "wide",
                                 all_namespaces=args.all_namespaces))  # fmt: skip
    return 0


def _fetch(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with appconnect.connect(args, env) as api:
            return await _application(ApplicationStore(api), args.namespace, args.name)

    return asyncio.run(go())


def run_get(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    obj = _fetch(args, env)
    if args.output in ("json", "yaml"):
        _print(appview.dump(obj, args.output))
    else:
        _print(appview.detail_view(obj, wide=args.output == "wide"))
    return 0


def run_history(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    obj = _fetch(args, env)
    history = list((obj.get("status") or {}).get("history") or [])
    if args.output in ("json", "yaml"):
        _print(appview.dump(history, args.output))
    elif not history:
        _note(f"Application {args.namespace}/{args.name} has not been deployed yet: no history.")
    else:
        _print(appview.history_view(obj, wide=args.output == "wide"))
    return 0


def _reconciler(api: client.ApiClient, env: Mapping[str, str], *, namespace: str) -> Reconciler:
    """A Reconciler for one pass from the command line, with a ledger of its own (no heal runs beside it)."""
    settings = appconnect.auditor_settings(env, namespace=namespace)
    return Reconciler(AuditorClients.build(api, settings=settings), Ledger())


def run_diff(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> int:
        async with appconnect.connect(args, env) as api:
            obj = await _application(ApplicationStore(api), args.namespace, args.name)
            reconciler = _reconciler(api, env, namespace=args.namespace)
            app = parse_application(obj)
            # render + compare only: Reconciler.run would write the status (and sync per the policy).
            rendered = await reconciler.render(app, revision=args.revision)
            comparison = await reconciler.compare(app, rendered, obj.get("status") or {})
        if rendered.unreachable:
            _note(f"warning: {rendered.unreachable}")
        _print(appview.diff_view(comparison.diffs))
        differing = [d for d in comparison.diffs if not d.in_sync]
        at = f"{args.revision or app.source.target_revision} ({appview.short(comparison.revision)})"
        if differing:
            _note(f"{len(differing)} of {len(comparison.diffs)} resources differ from Git at {at}")
            return 1
        _note(f"in sync with Git at {at}: {len(comparison.diffs)} resources")
        return 0

    return _writing(args, go())


def _report(args: argparse.Namespace, obj: Mapping[str, Any], result: PassResult) -> int:
    """Print a pass's per-resource results and the final state; 1 when any resource failed."""
    if result.error is not None:
        raise result.error
    outcome = result.outcome
    results = [{**ref_fields(r.ref), "status": r.status, "message": r.message}
               for r in (outcome.results if outcome else ())]  # fmt: skip
    _print(appview.results_view(results) if results else "Nothing to change: every resource matched Git.\n")
    _print("\n" + appview.summary_view({**obj, "status": result.status}))
    failed = outcome.failed if outcome is not None else ()
    if any("admission webhook" in r.message for r in failed):
        _note(_admission_hint(args))
    return 1 if failed else 0


def run_sync(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> int:
        async with appconnect.connect(args, env) as api:
            obj = await _application(ApplicationStore(api), args.namespace, args.name)
            reconciler = _reconciler(api, env, namespace=args.namespace)
            result = await reconciler.run(obj, manual=True, revision=args.revision, prune=args.prune)
        return _report(args, obj, result)

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
        _print(f"Automated sync of {namespace}/{name} is already off.\n\n")
        return obj
    updated = await store.patch_application_spec(
        AppKey(namespace, name), {"syncPolicy": {"automated": None}}, resource_version=meta["resourceVersion"]
    )
    patch = json.dumps({"spec": {"syncPolicy": {"automated": automated}}}, separators=(",", ":"))
    target = (spec.get("source") or {}).get("targetRevision")
    _print(
        f"Automated sync of {namespace}/{name} is now off: it would undo the rollback at the next pass.\n"
        f"To turn it back on (the Application then returns to {target}):\n"
        f"  kubectl -n {namespace} patch {contract.APPLICATION_CRD_NAME} {name} --type merge -p '{patch}'\n\n"
    )
    return updated


def run_rollback(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> int:
        async with appconnect.connect(args, env) as api:
            store = ApplicationStore(api)
            obj = await _application(store, args.namespace, args.name)
            entry = _history_entry(obj, args.id)
            current = ((obj.get("spec") or {}).get("source") or {}).get("path")
            deployed = (entry.get("source") or {}).get("path")
            if deployed is not None and deployed != current:
                _note(f"warning: entry {args.id} was deployed from path {deployed}; the Application now "
                      f"points at {current}, and that path is what gets rendered")  # fmt: skip
            reconciler = _reconciler(api, env, namespace=args.namespace)
            revision = str(entry.get("revision"))
            # Dry-run the rollback as the caller first: when RBAC or the admission webhook refuses it,
            # it stops here, before automated sync is turned off (nothing has changed).
            app = parse_application(obj)
            rendered = await reconciler.render(app, revision=revision)
            await reconciler.compare(app, rendered, obj.get("status") or {})
            obj = await _turn_off_automated(store, obj)
            result = await reconciler.run(obj, manual=True, revision=revision, prune=args.prune)
        code = _report(args, obj, result)
        _print(f"Rolled back {args.namespace}/{args.name} to history entry {args.id}: revision {revision} "
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
        async with appconnect.connect(args, env) as api:
            obj = await _application(ApplicationStore(api), args.namespace, args.name)
            cluster, unmark = Cluster(api), {"metadata": {"annotations": {contract.ANNOTATION_HOLD: None}}}
            for hold in filter(None, map(from_entry, _chosen_holds(obj, args.resource))):
                await cluster.merge_patch(hold.ref, unmark)
                until = contract.rfc3339(hold.until)
                _print(f"Released {hold.ref} (held for {hold.user or 'someone'} until {until}); "
                       "the auditor heals it now.\n")  # fmt: skip
        return 0

    return _writing(args, go())
