"""``curl`` of ``/metrics`` on both real processes: Prometheus text, the metrics docs/observability.md lists.

The webhook is the real ``driftwarden webhook serve``: reviews over HTTPS (curl checks its certificate
against the test CA), /metrics over plain HTTP on its own port, as Kubernetes components serve it. The
auditor is the real ``driftwarden auditor run`` against the real control plane, serving plain HTTP. Both
get real work first (a review posted with curl; an Application synced, then an out-of-band edit healed),
so every metric has samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from devtools.jaeger import free_port
from driftwarden import contract
from driftwarden.settings import environment
from tests.support.auditorprocs import Auditor, Site, auditors, site  # noqa: F401 - fixtures, found by name
from tests.support.gitrepo import GitRepo
from tests.support.guard import serving_pair
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).parents[2]
REVIEW = ROOT / "tests/webhook/fixtures/review-update-kubectl-edit.json"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n"


async def curl(url: str, *args: str) -> tuple[int, str, str]:
    """curl's exit code, the body, and the response's Content-Type."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "--silent", "--show-error", "--fail", "--max-time", "10",
        "--write-out", "\n%{content_type}", *args, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    body, _, content_type = out.decode().rpartition("\n")
    return proc.returncode or 0, body or err.decode(), content_type


async def until_served(url: str, *args: str) -> None:
    async def answers() -> bool:
        return (await curl(url, *args))[0] == 0

    await eventually(answers, seconds=60, every=0.2)


def families(text: str) -> dict[str, str]:
    """``# TYPE`` lines: metric family → counter, gauge or histogram."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, for every sample line (prometheus_client writes ``1.0`` where Go writes
    ``1``; the value is what counts)."""
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


@contextlib.asynccontextmanager
async def webhook_command(tmp_path: Path) -> AsyncIterator[tuple[str, Path, str]]:
    ca, cert, key = serving_pair(tmp_path)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    port, metrics_port = free_port(), free_port()
    argv = [sys.executable, "-m", "cli.main", "webhook", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--metrics-port", str(metrics_port),
            "--tls-cert-file", str(cert), "--tls-key-file", str(key)]  # fmt: skip
    env = {k: v for k, v in environment().items() if not k.startswith("OTEL_")}
    with (tmp_path / "webhook.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        yield f"https://127.0.0.1:{port}", ca_file, f"http://127.0.0.1:{metrics_port}"
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()


async def test_curl_of_the_webhooks_metrics(tmp_path: Path) -> None:
    async with webhook_command(tmp_path) as (url, ca_file, metrics_url):
        await until_served(metrics_url + "/readyz")
        code, answer, _ = await curl(
            url + "/validate", "--cacert", str(ca_file), "-H", "Content-Type: application/json",
            "--data-binary", f"@{REVIEW}",
        )  # fmt: skip
        assert code == 0, answer
        assert json.loads(answer)["response"]["allowed"] is False  # a kubectl edit of a Git-owned field
        code, text, content_type = await curl(metrics_url + "/metrics")
        refused, _, _ = await curl(url + "/metrics", "--cacert", str(ca_file))  # reviews only there
    assert code == 0, text
    assert refused == 22  # curl --fail: HTTP 404
    assert content_type == CONTENT_TYPE
    assert families(text) == {
        "driftwarden_admission_requests_total": "counter",
        "driftwarden_admission_duration_seconds": "histogram",
    }
    labels = '{decision="denied",endpoint="validate",operation="UPDATE"}'
    values = samples(text)
    assert values[f"driftwarden_admission_requests_total{labels}"] == 1
    assert values[f"driftwarden_admission_duration_seconds_count{labels}"] == 1
    inf = 'driftwarden_admission_duration_seconds_bucket{decision="denied",endpoint="validate",le="+Inf",'
    assert values[inf + 'operation="UPDATE"}'] == 1


async def test_curl_of_the_auditors_metrics(
    site: Site,  # noqa: F811 - the fixture
    auditors: list[Auditor],  # noqa: F811 - the fixture
    git_repo: Callable[..., GitRepo],
) -> None:
    repo = git_repo({"app/settings.yaml": CM})
    name, destination = f"metered-{uuid.uuid4().hex[:6]}", f"metered-{uuid.uuid4().hex[:6]}"
    port = free_port()
    auditors.append(await site.auditor("metered", "--metrics-port", str(port)))
    await site.application(name, repo, destination)

    async def synced() -> bool:
        return await site.synced(name, destination, color="blue", revision=repo.head())

    await eventually(synced, seconds=60)
    core = client.CoreV1Api(site.admin)
    await asyncio.sleep(0.5)  # the ConfigMap watch has listed
    await core.patch_namespaced_config_map("settings", destination, {"data": {"color": "red"}})

    async def healed() -> bool:
        return (await core.read_namespaced_config_map("settings", destination)).data == {"color": "blue"}

    await eventually(healed, seconds=30)
    url = f"http://127.0.0.1:{port}/metrics"
    app = f"{site.namespace}/{name}"
    text = ""

    async def counted() -> bool:  # the heal's counters are recorded just after the object is back
        nonlocal text
        code, text, content_type = await curl(url)
        assert code == 0 and content_type == CONTENT_TYPE, text
        return samples(text).get(f'driftwarden_drift_healed_total{{app="{app}",kind="ConfigMap"}}') == 1

    try:
        await eventually(counted, seconds=15)
    except TimeoutError:
        raise AssertionError(f"no heal counted on /metrics:\n{text}") from None
    assert families(text) == {
        "driftwarden_drift_detected_total": "counter",
        "driftwarden_drift_healed_total": "counter",
        "driftwarden_heal_latency_seconds": "histogram",
        "driftwarden_reconcile_duration_seconds": "histogram",
        "driftwarden_app_sync_status": "gauge",
        "driftwarden_app_health_status": "gauge",
    }
    values = samples(text)
    assert values[f'driftwarden_drift_detected_total{{app="{app}",kind="ConfigMap"}}'] == 1
    assert values[f'driftwarden_heal_latency_seconds_count{{app="{app}",kind="ConfigMap"}}'] == 1
    assert values[f'driftwarden_app_sync_status{{app="{app}",status="Synced"}}'] == 1
    assert values[f'driftwarden_app_health_status{{app="{app}",status="Healthy"}}'] == 1
    assert f'driftwarden_reconcile_duration_seconds_count{{app="{app}"}}' in values
    assert contract.GROUP not in text  # labels are app and kind, not the CRD's plumbing
