"""What the webhook adds to a write through the API server (``make bench``; a benchmark, not a test).

The p50 of a PATCH on a managed object with driftwarden's webhook configurations installed, against
without them, and against the same configurations pointing at a bare handler (the floor: what the API
server's two webhook calls cost with any Python server). It starts the local control plane (etcd +
kube-apiserver only: ``ControlPlaneSettings(bare=True)``), the real ``driftwarden webhook serve`` as its
own process over HTTPS (tracing off) and benchmarks.bare_handler; server-side-applies a managed Deployment
as the GitOps manager ``driftwarden`` (tracking annotation, label, managedFields); then PATCHes, as the
admin user, an annotation Git does not own, in blocks that rotate between the configurations installed
for either server (the caBundle: the API server verifies TLS) and none. Each reviewed PATCH goes through
both webhooks (mutating, then validating) and is allowed; the figure is the difference of the medians.
Target (issue 17): under 2 ms.

    python -m benchmarks.apiserver_patch [--patches 200] [--blocks 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
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
from webhook.install import install, uninstall
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration

NAMESPACE = "bench"
NAME = "web"
PATH = resource_path(group="apps", version="v1", plural="deployments", namespace=NAMESPACE, name=NAME)


def managed_deployment() -> dict[str, Any]:
    tracking = f"{contract.DEFAULT_INSTALL_NAMESPACE}/bench:apps/Deployment:{NAMESPACE}/{NAME}"
    labels = {"app": NAME}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {contract.LABEL_APP: "bench"},
                     "annotations": {contract.ANNOTATION_TRACKING_ID: tracking}},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
            ]},
        }},
    }  # fmt: skip


async def _block(api: Any, patches: int, start: int) -> list[float]:
    """``patches`` sequential PATCHes of an annotation nobody in Git owns; seconds each."""
    seconds = []
    for number in range(start, start + patches):
        body = {"metadata": {"annotations": {"bench/round": str(number)}}}
        sent = time.perf_counter()
        await request_json(api, "PATCH", PATH, body=body, content_type=MERGE_PATCH)
        seconds.append(time.perf_counter() - sent)
    return seconds


MODES = ("without", "with", "bare")
"""without: no configuration installed; with: driftwarden's configurations pointing at the real webhook;
bare: the same configurations pointing at benchmarks.bare_handler, which answers "allowed" after a JSON
parse: what any webhook written in Python costs the PATCH here, the floor under driftwarden's figure."""


async def _blocks(
    api: Any, urls: dict[str, str], ca_pem: bytes, args: argparse.Namespace
) -> dict[str, list[float]]:
    selection = selection_for(DRIFTWARDEN, skip_users=[contract.auditor_identity()], timeout_seconds=5)
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    count = 20
    for block in range(args.blocks):
        for mode in MODES if block % 2 == 0 else MODES[::-1]:
            if mode == "without":
                await uninstall(api)
            else:
                endpoint = Endpoint(ca_bundle=ca_pem, url=urls[mode])
                await install(
                    api,
                    validating=validating_configuration(endpoint=endpoint, selection=selection),
                    mutating=mutating_configuration(endpoint=endpoint, selection=selection),
                )
            await asyncio.sleep(1)  # the API server picks configurations up from its informer
            await _block(api, 5, count)  # and its webhook client connects
            timings[mode] += await _block(api, args.patches, count + 5)
            count += args.patches + 5
    await uninstall(api)
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
                await request_json(api, "PATCH", PATH, body=managed_deployment(), content_type=APPLY_PATCH,
                                   query={"fieldManager": contract.FIELD_MANAGER, "force": True})  # fmt: skip
                await _block(api, 20, 0)  # warm-up: connections, caches
                files = await asyncio.to_thread(serving_files, work)
                ports = {"with": free_port(), "bare": free_port()}
                servers = {
                    "with": webhook_server(files, {}, port=ports["with"], log=work / "webhook.log"),
                    "bare": ManagedProcess("bare", [
                        sys.executable, "-m", "benchmarks.bare_handler", "--port", str(ports["bare"]),
                        "--tls-cert-file", str(files[1]), "--tls-key-file", str(files[2]),
                    ], work / "bare.log"),
                }  # fmt: skip
                urls = {mode: f"https://127.0.0.1:{port}" for mode, port in ports.items()}
                async with contextlib.AsyncExitStack() as stack:
                    for mode, server in servers.items():
                        await server.start()
                        stack.push_async_callback(server.stop, grace=15)
                        await ready(urls[mode] + "/validate", files[0], server)
                    timings = await _blocks(api, urls, files[0].read_bytes(), args)
            finally:
                await api.close()
    p50 = {mode: statistics.median(values) * 1000 for mode, values in timings.items()}
    p99 = {mode: sorted(values)[int(0.99 * len(values))] * 1000 for mode, values in timings.items()}
    return {
        "settings": {"patches": args.patches, "blocks": args.blocks},
        "p50_ms": {k: round(v, 2) for k, v in p50.items()},
        "p99_ms": {k: round(v, 2) for k, v in p99.items()},
        "added_p50_ms": round(p50["with"] - p50["without"], 2),
        "bare_added_p50_ms": round(p50["bare"] - p50["without"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.apiserver_patch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--patches", type=int, default=200, help="PATCHes per block")
    parser.add_argument(
        "--blocks", type=int, default=4, help="blocks of (without, with), every other reversed"
    )
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
