"""``driftwarden up``: run the local control plane (etcd + kube-apiserver) until interrupted.

Orchestration only: flags → settings → ControlPlane; the control plane itself lives in
``devtools.controlplane``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path

from devtools.controlplane import ControlPlane, ControlPlaneSettings
from driftwarden.settings import cache_root, control_plane_bin_dir
from driftwarden.signals import stop_on_signals


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "up",
        help="run a local etcd + kube-apiserver until interrupted",
        description=(
            "Start a real local control plane (etcd and kube-apiserver, built from source by "
            "`make control-plane`) on 127.0.0.1, write an admin kubeconfig, print its path, and "
            "stay up until Ctrl-C, which stops both processes."
        ),
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="directory for etcd data, certificates, logs and kubeconfigs "
        "(default: <cache>/up; wiped at start)",
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        help="directory with etcd, kube-apiserver and kubectl "
        "(default: $DRIFTWARDEN_K8S_BIN_DIR or the build cache)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    work_dir: Path = args.work_dir or cache_root(env) / "up"
    shutil.rmtree(work_dir, ignore_errors=True)  # a previous run's etcd data would clash with new certs
    settings = ControlPlaneSettings(
        bin_dir=args.bin_dir or control_plane_bin_dir(env), work_dir=work_dir, keep_work_dir=True
    )
    return asyncio.run(_serve(settings))


async def _serve(settings: ControlPlaneSettings) -> int:
    plane = ControlPlane(settings)
    print(f"starting etcd and kube-apiserver (binaries in {settings.bin_dir}) ...", flush=True)
    with stop_on_signals() as stop:
        async with plane:
            assert plane.admin is not None and plane.admin.kubeconfig is not None
            print(f"kube-apiserver ready at {plane.url}")
            print(f"kubeconfig (admin, system:masters): {plane.admin.kubeconfig}")
            print(f"  export KUBECONFIG={plane.admin.kubeconfig}")
            print(f"logs: {plane.work_dir}/etcd.log, {plane.work_dir}/kube-apiserver.log")
            print("press Ctrl-C to stop", flush=True)
            await stop.wait()
            print("stopping kube-apiserver and etcd ...", flush=True)
    print("stopped")
    return 0
