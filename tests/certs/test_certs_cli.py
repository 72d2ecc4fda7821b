"""``driftwarden certs issue|check|rotate`` as a user runs them, and two rotators racing on one cluster."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
import sys
import uuid
from pathlib import Path

import pytest

from certs.facts import bundle_facts, facts, issuer_in
from certs.pki import new_ca
from certs.policy import ServingNames
from certs.rotate import RotateSettings, reconcile
from certs.store import CertStore, Location
from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.certs.support import published_bundles, read_secret
from tests.support.clients import Clients
from tests.support.guard import ensure_namespace
from tests.support.identities import rotator
from webhook.admission.profiles import get_profile
from webhook.install import install, uninstall
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration


async def cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_issue_writes_a_ca_and_a_serving_pair_that_check_accepts(tmp_path: Path) -> None:
    code, out = await cli("certs", "issue", "--out-dir", str(tmp_path), "--ip", "127.0.0.1",
                          "--serving-validity-days", "90")  # fmt: skip
    assert code == 0, out
    assert {p.name for p in tmp_path.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    for key in ("ca.key", "tls.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    serving = facts((tmp_path / "tls.crt").read_bytes())
    assert "driftwarden-webhook.driftwarden-system.svc.cluster.local" in serving.dns_names
    assert serving.ip_addresses == ("127.0.0.1",)
    assert dt.timedelta(days=89) < serving.lifetime < dt.timedelta(days=91)
    files = ["--cert-file", str(tmp_path / "tls.crt"), "--key-file", str(tmp_path / "tls.key"),
             "--ca-file", str(tmp_path / "ca.crt")]  # fmt: skip
    code, out = await cli("certs", "check", *files, "--ip", "127.0.0.1")
    assert code == 0, out
    code, out = await cli("certs", "check", *files, "--service", "elsewhere")
    assert code == 1 and "lacks subject alternative names" in out
    code, out = await cli("certs", "check", *files, "--warn-days", "120")
    assert code == 1 and "expires in" in out
    # A second serving pair from the same CA: --ca-cert/--ca-key reuse it and write no CA key.
    again = tmp_path / "again"
    code, out = await cli("certs", "issue", "--out-dir", str(again), "--ca-cert", str(tmp_path / "ca.crt"),
                          "--ca-key", str(tmp_path / "ca.key"))  # fmt: skip
    assert code == 0, out
    assert not (again / "ca.key").exists()
    assert issuer_in((again / "tls.crt").read_bytes(), among=bundle_facts((tmp_path / "ca.crt").read_bytes()))


@pytest.mark.cluster
async def test_rotate_and_check_against_the_cluster(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path
) -> None:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    admin = clients.admin
    namespace = f"certs-cli-{uuid.uuid4().hex[:6]}"
    await ensure_namespace(admin, namespace)
    own = tmp_path / "rotator.kubeconfig"  # the rotator's service account, with the manifests' RBAC
    await rotator(clients, namespace, kubeconfig=own)
    where = ["--kubeconfig", str(own), "--namespace", namespace]
    code, out = await cli("certs", "check", *where)
    assert code == 1 and "no PEM certificate" in out  # nothing there yet

    code, out = await cli("certs", "rotate", *where)
    assert code == 0, out
    assert "new CA (no CA yet)" in out and "new serving certificate" in out and "next renewal due" in out
    code, out = await cli("certs", "check", *where)
    assert code == 0, out

    # The webhook configurations appear, trusting some other CA: check notices, rotate repairs.
    stranger = new_ca("stranger", now=dt.datetime.now(dt.UTC), validity=dt.timedelta(days=1))
    endpoint = Endpoint(ca_bundle=stranger.cert_pem, url="https://127.0.0.1:1")
    selection = selection_for(get_profile("driftwarden"), skip_users=[contract.auditor_identity()],
                              failure_policy="Ignore")  # fmt: skip
    await install(admin, validating=validating_configuration(endpoint=endpoint, selection=selection),
                  mutating=mutating_configuration(endpoint=endpoint, selection=selection))  # fmt: skip
    try:
        code, out = await cli("certs", "check", *where)
        assert code == 1 and "caBundle of driftwarden-guard/objects.guard.driftwarden.io" in out, out
        code, out = await cli("certs", "rotate", *where)
        assert code == 0 and "published CA bundle" in out, out
        code, out = await cli("certs", "check", *where)
        assert code == 0, out
        ca = (await read_secret(admin, namespace, contract.WEBHOOK_CA_SECRET))["ca.crt"]
        assert await published_bundles(admin, contract.MUTATING_WEBHOOK_CONFIGURATION, mutating=True) == [
            ca,
            ca,
        ]
        code, out = await cli("certs", "rotate", *where)  # nothing left to do
        assert code == 0 and out.startswith("certificates are current"), out
    finally:
        await uninstall(admin)


@pytest.mark.cluster
async def test_two_rotators_racing_agree_on_one_ca(clients: Clients) -> None:
    namespace = f"certs-race-{uuid.uuid4().hex[:6]}"
    await ensure_namespace(clients.admin, namespace)
    settings = RotateSettings(ServingNames(contract.WEBHOOK_SERVICE, namespace))
    rotators = [await rotator(clients, namespace) for _ in range(2)]  # two replicas, the manifests' RBAC
    stores = [CertStore(api, Location(namespace=namespace)) for api in rotators]
    reports = await asyncio.gather(*(reconcile(store, settings) for store in stores))
    assert all(r.next_due is not None for r in reports)
    ca_secret = await read_secret(clients.admin, namespace, contract.WEBHOOK_CA_SECRET)
    tls = await read_secret(clients.admin, namespace, contract.WEBHOOK_TLS_SECRET)
    assert tls["ca.crt"] == ca_secret["ca.crt"] and ca_secret["retired.crt"] == b""
    assert issuer_in(tls["tls.crt"], among=bundle_facts(ca_secret["ca.crt"])) is not None
    snap = await stores[0].read()
    assert snap.stored.ca is not None and snap.stored.mark is not None
    assert snap.stored.mark.fingerprint == facts(snap.stored.ca.cert_pem).fingerprint
