"""``driftwarden dev up``: the whole product on this machine until Ctrl-C (development only).

Orchestration only, imported when the command runs: flags (``cli.dev``) -> ``DevSettings`` -> ``running``
(``devtools.dev.stack``), then what runs and what to try, printed for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path

from devtools.dev import BREAKGLASS_GROUP
from devtools.dev.stack import DevSettings, DevStack, running
from devtools.jaeger import JaegerError, find_jaeger
from driftwarden import contract
from driftwarden.settings import cache_root, control_plane_bin_dir, kwok_bin_dir
from driftwarden.signals import stop_on_signals


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
    """Start the stack and keep it up until Ctrl-C."""
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
