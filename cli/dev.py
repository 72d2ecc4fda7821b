"""``driftwarden dev up``: the whole product on this machine until Ctrl-C (development only).

Orchestration only: flags -> ``devtools.dev.stack.DevSettings`` -> ``running``, then what runs and what
to try, printed for a person. The stack itself lives in ``devtools.dev``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path

from devtools.dev.stack import BREAKGLASS_GROUP, DevSettings, DevStack, running
from devtools.jaeger import JaegerError, find_jaeger
from driftwarden import contract
from driftwarden.settings import cache_root, control_plane_bin_dir, kwok_bin_dir
from driftwarden.signals import stop_on_signals


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="run the whole product on this machine (development)")
    commands = dev.add_subparsers(title="commands", metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="a local cluster with driftwarden installed and running, until Ctrl-C",
        description=(
            "Start the living local cluster (etcd, kube-apiserver, controller manager, scheduler, kwok "
            "nodes), "
            "install the CRD, namespace, service accounts and RBAC from manifests/, issue the webhook's "
            "certificates, run the webhook and install its configurations, run the auditor as its service "
            "account, start Jaeger when it is built, and create the users alice (edit) and sre (edit and "
            f"break-glass group {BREAKGLASS_GROUP}). Prints their kubeconfigs and what to try; Ctrl-C stops "
            "everything."
        ),
    )
    add_stack_flags(up)
    up.set_defaults(run=run_up)


def add_stack_flags(parser: argparse.ArgumentParser) -> None:
    """The flags ``dev up`` and ``demo`` share."""
    parser.add_argument("--work-dir", type=Path,
                        help="directory for the cluster, logs and kubeconfigs (default: <cache>/dev, "
                        "or <cache>/demo for demo; wiped at start)")  # fmt: skip
    parser.add_argument("--nodes", type=int, default=2, help="fake Nodes kwok plays (default %(default)s)")
    parser.add_argument("--no-jaeger", action="store_true", help="do not start Jaeger even if it is built")
    parser.add_argument("--default-mode", choices=contract.GUARD_MODES, default="enforce",
                        help="the webhook's mode for objects without a guard annotation "
                        "(default %(default)s)")  # fmt: skip


def stack_settings(args: argparse.Namespace, env: Mapping[str, str], *, name: str) -> DevSettings:
    work_dir: Path = args.work_dir or cache_root(env) / name
    shutil.rmtree(work_dir, ignore_errors=True)  # old etcd data would not match the new certificates
    jaeger = None
    if not args.no_jaeger:
        try:
            jaeger = find_jaeger(env)
        except JaegerError:
            print("note: Jaeger is not built (make jaeger): running without traces", flush=True)
    return DevSettings(
        work_dir=work_dir, bin_dir=control_plane_bin_dir(env), kwok_dir=kwok_bin_dir(env), jaeger=jaeger,
        nodes=args.nodes, default_mode=args.default_mode,
    )  # fmt: skip


def run_up(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return asyncio.run(_up(stack_settings(args, env, name="dev"), env))


def describe(stack: DevStack) -> str:
    """What runs and how a person reaches it."""
    lines = [
        f"kube-apiserver: {stack.plane.url} (nodes: {', '.join(stack.plane.node_names)}; no container runs)",
        f"webhook:        {stack.webhook_url} (default mode {stack.settings.default_mode}; log "
        f"{stack.log('webhook')})",
        f"auditor:        as {contract.auditor_identity()} (log {stack.log('auditor')})",
        f"push webhook:   {stack.push_url} (secret in $DRIFTWARDEN_WEBHOOK_SECRET of the auditor)",
    ]
    if stack.jaeger is not None:
        lines.append(f"Jaeger:         {stack.jaeger.query_url}/api/services (traces of both processes)")
    lines.append("kubeconfigs:")
    lines.append(f"  admin (system:masters): {stack.admin_kubeconfig}")
    lines.append(f"  alice (edit):           {stack.kubeconfigs['alice']}")
    lines.append(f"  sre (edit, {BREAKGLASS_GROUP}): {stack.kubeconfigs['sre']}")
    return "\n".join(lines)


async def _up(settings: DevSettings, env: Mapping[str, str]) -> int:
    print(f"starting the local cluster and driftwarden in {settings.work_dir} ...", flush=True)
    with stop_on_signals() as stop:
        async with running(settings, env=env) as stack:
            print(describe(stack))
            print("try next:")
            print(f"  export KUBECONFIG={stack.admin_kubeconfig}")
            print("  driftwarden demo     # the whole story, checked step by step (in another work dir)")
            print(
                f"  kubectl --kubeconfig {stack.kubeconfigs['alice']} edit deployment ...  "
                "# denied where Git owns what alice changes"
            )
            print("press Ctrl-C to stop", flush=True)
            await stop.wait()
            print("stopping ...", flush=True)
    print("stopped")
    return 0
