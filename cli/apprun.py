"""What the reading ``driftwarden app`` commands do (``list``, ``get``, ``history``), and how output is shown.

Orchestration only, in the manner of ``argocd app`` and kubectl: flags (``cli.app``) → a client acting as
the caller (or ``--as`` someone, cli.kube) → ``ApplicationStore`` → ``appview`` text, coloured only on a
terminal (``cli.colour``). Imported when one of these runs, it stays light (no renderer, Git or
telemetry): the reconciling commands are ``cli.appsync``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Callable, Mapping
from typing import Any

from auditor.kube.applications import ApplicationStore
from auditor.objects import AppKey
from cli import appview, colour
from cli.flags import Command
from cli.kube import connect
from driftwarden import contract
from driftwarden.errors import KubeError


async def application(store: ApplicationStore, namespace: str, name: str) -> dict[str, Any]:
    obj = await store.get_application(AppKey(namespace, name))
    if obj is None:
        raise KubeError(
            f'Application "{name}" not found in namespace {namespace} '
            f"(see `driftwarden app list -n {namespace}`, or -A for every namespace)",
            status=404, reason="NotFound",
        )  # fmt: skip
    return obj


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def show(text: str, env: Mapping[str, str], *, paint: Callable[[str], str] = colour.statuses) -> None:
    """Print what a person reads (tables, diffs), coloured by ``paint`` on a terminal only."""
    emit(paint(text) if colour.enabled(tty=sys.stdout.isatty(), env=env) else text)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def go() -> list[dict[str, Any]]:
        async with connect(args, env, as_user=args.as_user) as api:
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
        emit(appview.dump(appview.as_list(items), args.output))
    elif not items:
        where = "any namespace" if args.all_namespaces else f"namespace {args.namespace}"
        note(f"No Applications found in {where}.")
    else:
        now = dt.datetime.now(dt.UTC)
        show(appview.list_view(items, now=now, wide=args.output == "wide",
                                all_namespaces=args.all_namespaces), env)  # fmt: skip
    return 0


def _fetch(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with connect(args, env, as_user=args.as_user) as api:
            return await application(ApplicationStore(api), args.namespace, args.name)

    return asyncio.run(go())


def run_get(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    obj = _fetch(args, env)
    if args.output in ("json", "yaml"):
        emit(appview.dump(obj, args.output))
    else:
        show(appview.detail_view(obj, wide=args.output == "wide"), env)
    return 0


def run_history(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    obj = _fetch(args, env)
    history = list((obj.get("status") or {}).get("history") or [])
    if args.output in ("json", "yaml"):
        emit(appview.dump(history, args.output))
    elif not history:
        note(f"Application {args.namespace}/{args.name} has not been deployed yet: no history.")
    else:
        show(appview.history_view(obj, wide=args.output == "wide"), env)
    return 0


COMMANDS: Mapping[str, Command] = {"list": run_list, "get": run_get, "history": run_history}
