"""What the webhook adds to a write through the API server (``make bench``; a benchmark, not a test).

The p50 of a PATCH on a managed object reviewed by driftwarden's webhook configurations, against the same
PATCH on an object no webhook selects, and against one whose configurations point at a bare handler (the
floor: what the API server's two webhook calls cost with any Python server). It starts the local control
plane (etcd + kube-apiserver only: ``ControlPlaneSettings(bare=True)``), the real ``driftwarden webhook
serve`` as its own process over HTTPS (tracing off) and benchmarks.bare_handler; server-side-applies three
Deployments of the same shape as the GitOps manager ``driftwarden`` (tracking annotation, managedFields):
``web`` with driftwarden's label (its configurations select it), ``web-bare`` with a label only the bare
handler's configurations (the same builders, other names) select, ``web-none`` with neither. Then, as the
admin user, it PATCHes an annotation Git does not own on the three in turn, the order rotating, so the
three series share the machine's load moment by moment (the machine is shared; blocks of one mode at a
time measured the neighbours more than the webhook). The objects are in enforce mode and the admin is not
break-glass, so each reviewed PATCH reaches the validating hook alone (the mutating hook's may-stamp
condition) and is allowed; the figure is the difference of the medians.
Target (issue 17): under 2 ms.

    python -m benchmarks.apiserver_patch [--patches 600] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.admission_load import ready, serving_files, webhook_server, write_json
from devtools.controlplane import ControlPlane, ControlPlaneSettings
from devtools.controlplane.processes import ManagedProcess
from devtools.jaeger import free_port
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import APPLY_PATCH, MERGE_PATCH, request_json, resource_path
from driftwarden.settings import control_plane_bin_dir, environment
from webhook.admission.profiles import DRIFTWARDEN
from webhook.install import install
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration

NAMESPACE = "bench"
MODES = ("without", "with", "bare")
"""without: no configuration selects the object; with: driftwarden's configurations review it; bare: the same
configurations under other names, pointing at benchmarks.bare_handler, review it."""
NAMES = {"without": "web-none", "with": "web", "bare": "web-bare"}
BARE_LABEL = "bench.driftwarden.io/bare"


def _path(mode: str) -> str:
    return resource_path(
        group="apps", version="v1", plural="deployments", namespace=NAMESPACE, name=NAMES[mode]
    )


def managed_deployment(mode: str) -> dict[str, Any]:
    name = NAMES[mode]
    tracking = f"{contract.DEFAULT_INSTALL_NAMESPACE}/bench:apps/Deployment:{NAMESPACE}/{name}"
    labels = {"app": name}
    marker = {"with": {contract.LABEL_APP: "bench"}, "bare": {BARE_LABEL: "bench"}}.get(mode, {})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": marker,
                     "annotations": {contract.ANNOTATION_TRACKING_ID: tracking}},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
            ]},
        }},
    }  # fmt: skip


def configurations(mode: str, endpoint: Endpoint) -> dict[str, dict[str, Any]]:
    """The validating and mutating configurations reviewing ``mode``'s object (driftwarden's for "with")."""
    selection = selection_for(DRIFTWARDEN, skip_users=[contract.auditor_identity()], timeout_seconds=5)
    if mode == "bare":
        selection = replace(selection, label_keys=(BARE_LABEL,))
    built = {
        "validating": validating_configuration(endpoint=endpoint, selection=selection),
        "mutating": mutating_configuration(endpoint=endpoint, selection=selection),
    }
    if mode == "bare":
        for config in built.values():
            config["metadata"]["name"] = "driftwarden-bench-bare-" + config["metadata"]["name"]
            for hook in config["webhooks"]:
                hook["name"] = "bare-" + hook["name"]
    return built


async def _patch(api: Any, mode: str, number: int) -> float:
    """One PATCH of an annotation nobody in Git owns on ``mode``'s object; seconds."""
    body = {"metadata": {"annotations": {"bench/round": str(number)}}}
    sent = time.perf_counter()
    await request_json(api, "PATCH", _path(mode), body=body, content_type=MERGE_PATCH)
    return time.perf_counter() - sent


async def _interleaved(api: Any, patches: int) -> dict[str, list[float]]:
    """``patches`` PATCHes of each object, one of each in turn, the order rotating every turn."""
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    for number in range(patches):
        turn = MODES[number % 3 :] + MODES[: number % 3]
        for mode in turn:
            timings[mode].append(await _patch(api, mode, number))
    return timings


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    env = environment()
    with tempfile.TemporaryDirectory(prefix="driftwarden-bench-patch-") as tmp:
        work = Path(tmp)
        settings = ControlPlaneSettings(
            bin_dir=control_plane_bin_dir(env), work_dir=work / "plane", bare=True
        )
        async with ControlPlane(settings) as plane:
            assert plane.admin is not None
            api = api_client_for(plane.admin)
            try:
                namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
                await request_json(api, "POST", "/api/v1/namespaces", body=namespace)
                for mode in MODES:
                    owner = {"fieldManager": contract.FIELD_MANAGER, "force": True}
                    await request_json(
                        api,
                        "PATCH",
                        _path(mode),
                        body=managed_deployment(mode),
                        content_type=APPLY_PATCH,
                        query=owner,
                    )
                files = await asyncio.to_thread(serving_files, work)
                ports = {"with": free_port(), "bare": free_port()}
                servers = {
                    "with": webhook_server(files, {}, port=ports["with"], log=work / "webhook.log"),
                    "bare": ManagedProcess("bare", [
                        sys.executable, "-m", "benchmarks.bare_handler", "--port", str(ports["bare"]),
                        "--tls-cert-file", str(files[1]), "--tls-key-file", str(files[2]),
                    ], work / "bare.log"),
                }  # fmt: skip
                async with contextlib.AsyncExitStack() as stack:
                    for mode, server in servers.items():
                        await server.start()
                        stack.push_async_callback(server.stop, grace=15)
                        url = f"https://127.0.0.1:{ports[mode]}"
                        await ready(url + "/validate", files[0], server)
                        endpoint = Endpoint(ca_bundle=files[0].read_bytes(), url=url)
                        await install(api, **configurations(mode, endpoint))
                    await asyncio.sleep(1)  # the API server picks configurations up from its informer
                    await _interleaved(api, 20)  # warm-up: its webhook clients connect, caches fill
                    timings = await _interleaved(api, args.patches)
            finally:
                await api.close()
    p50 = {mode: statistics.median(values) * 1000 for mode, values in timings.items()}
    p99 = {mode: sorted(values)[int(0.99 * len(values))] * 1000 for mode, values in timings.items()}
    return {
        "settings": {"patches": args.patches},
        "p50_ms": {k: round(v, 2) for k, v in p50.items()},
        "p99_ms": {k: round(v, 2) for k, v in p99.items()},
        "added_p50_ms": round(p50["with"] - p50["without"], 2),
        "bare_added_p50_ms": round(p50["bare"] - p50["without"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.apiserver_patch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--patches", type=int, default=600, help="PATCHes of each object")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    report = asyncio.run(bench(args))
    p50, p99 = report["p50_ms"], report["p99_ms"]
    print(f"PATCH p50 without the webhook {p50['without']} ms, with it {p50['with']} ms: "
          f"added {report['added_p50_ms']} ms (p99 {p99['without']} / {p99['with']} ms); "
          f"a bare handler adds {report['bare_added_p50_ms']} ms")  # fmt: skip
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
