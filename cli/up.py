"""``driftwarden up``: the flags and help of the local control plane command.

Registration only, run whenever the parser is built; starting the plane is ``cli.uprun``'s, imported when
``up`` runs (``devtools.controlplane`` pulls in the Kubernetes client and cryptography).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "up",
        help="run a local Kubernetes control plane (with controllers and kwok nodes) until interrupted",
        description=(
            "Start a real local Kubernetes control plane on 127.0.0.1, built from source by `make "
            "control-plane` and `make kwok`: etcd, kube-apiserver, kube-controller-manager, kube-scheduler "
            "and kwok playing fake Nodes, so Deployments get Pods that become Ready (no container runs), "
            "Jobs complete, Namespaces finish deleting and the garbage collector works. Writes an admin "
            "kubeconfig, prints its path, and stays up until Ctrl-C, which stops every process."
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
        help="directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl "
        "(default: $DRIFTWARDEN_K8S_BIN_DIR or the build cache)",
    )
    parser.add_argument(
        "--kwok-dir",
        type=Path,
        help="directory with kwok and its stages.yaml "
        "(default: $DRIFTWARDEN_KWOK_BIN_DIR or the build cache)",
    )
    parser.add_argument("--nodes", type=_count, default=2, help="fake Nodes kwok plays (default %(default)s)")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="only etcd and kube-apiserver: no controllers, scheduler or nodes (objects are stored and "
        "admitted, but nothing acts on them)",
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME",
        help="also write a client-certificate kubeconfig for person NAME (repeatable)",
    )
    parser.set_defaults(run=run)


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("give 1 to 100 nodes")
    return value


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``up``; its module is imported only now (start-up time)."""
    from cli import uprun  # noqa: PLC0415  # the control plane's Kubernetes client: only when it runs

    return uprun.run(args, env)
