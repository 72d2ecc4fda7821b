"""What ``driftwarden up`` does: run the local control plane until interrupted.

Orchestration only, imported when ``up`` runs: flags (``cli.up``) → settings → ControlPlane
(``devtools.controlplane``), then what runs, where the kubeconfigs are and how to give a user edit rights,
printed for a person to follow. It must not start driftwarden's own processes (that is ``driftwarden
dev``'s job).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from devtools.controlplane import ControlPlane, ControlPlaneSettings
from driftwarden.settings import cache_root, control_plane_bin_dir, kwok_bin_dir
from driftwarden.signals import stop_on_signals


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    work_dir: Path = args.work_dir or cache_root(env) / "up"
    shutil.rmtree(work_dir, ignore_errors=True)  # a previous run's etcd data would clash with new certs
    settings = ControlPlaneSettings(
        bin_dir=args.bin_dir or control_plane_bin_dir(env),
        work_dir=work_dir,
        keep_work_dir=True,
        bare=args.bare,
        kwok_dir=None if args.bare else (args.kwok_dir or kwok_bin_dir(env)),
        nodes=args.nodes,
    )
    return asyncio.run(_serve(settings, users=args.user))


async def _serve(settings: ControlPlaneSettings, *, users: Sequence[str]) -> int:
    plane = ControlPlane(settings)
    print(f"starting {', '.join(plane.processes)} (binaries in {settings.bin_dir}) ...", flush=True)
    with stop_on_signals() as stop:
        async with plane:
            assert plane.admin is not None and plane.admin.kubeconfig is not None
            print(f"kube-apiserver ready at {plane.url}")
            print(f"running: {', '.join(plane.processes)}")
            if plane.node_names:
                print(f"nodes (kwok; no container runs, Pod IPs are fake): {', '.join(plane.node_names)}")
            print(f"kubeconfig (admin, system:masters): {plane.admin.kubeconfig}")
            print(f"  export KUBECONFIG={plane.admin.kubeconfig}")
            for name in users:
                made = await asyncio.to_thread(plane.user, name)
                print(f"kubeconfig ({name}, no rights until bound): {made.kubeconfig}")
            _print_edit_hint(plane, users)
            logs = ", ".join(str(plane.work_dir / f"{name}.log") for name in plane.processes)
            print(f"logs: {logs}")
            print("press Ctrl-C to stop", flush=True)
            await stop.wait()
            print(f"stopping {', '.join(reversed(plane.processes))} ...", flush=True)
    print("stopped")
    return 0


def _print_edit_hint(plane: ControlPlane, users: Sequence[str]) -> None:
    name = users[0] if users else "alice"
    if plane.settings.bare:
        print("note: bare plane: the built-in edit/view roles have no rules (nothing aggregates them)")
        return
    print(f"edit rights for {name} in namespace default (the aggregated edit role works):")
    print(f"  kubectl create rolebinding {name}-edit --clusterrole=edit --user={name} --namespace=default")
    if not users:
        print("  (driftwarden up --user alice also writes a kubeconfig for alice)")
