"""kubectl's order of credentials for every command that talks to the cluster, on the real control plane.

``--kubeconfig``, then ``$KUBECONFIG``, then the pod's service account (``KUBERNETES_SERVICE_HOST`` set and
its token mounted), then ``~/.kube/config``; ``--context`` picks a context. Each case gives the credentials
that should win no rights at all and every credential that should lose full rights, so a command that picked
the wrong one would succeed: a Forbidden proves the order. The environment is the ``env`` mapping the CLI
takes (real kubeconfig files of the control plane, a real service-account token mounted in a directory).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client

from cli.auditorrun import process_settings
from cli.main import build_parser, main
from devtools.controlplane import ControlPlane
from devtools.controlplane.serviceaccounts import service_account_credentials
from devtools.jaeger import free_port
from driftwarden.contract import AUDITOR_SERVICE_ACCOUNT
from driftwarden.errors import ConfigError, KubeError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json, resource_path
from driftwarden.settings import environment
from tests.support.auditor import install_crd_and_rbac
from tests.support.guard import serving_pair
from tests.support.identities import service_account_kubeconfig
from webhook.install import uninstall

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Identities:
    """Files and directories for each identity: admins have every right, the others none."""

    admin: Path
    nobody: Path
    both: Path
    """Two contexts: the current one is admin's, ``nobody_context`` is nobody's."""
    nobody_context: str
    admin_home: Path
    empty_home: Path
    admin_account: Path
    plain_account: Path
    plain_account_user: str
    no_token: Path
    service: Mapping[str, str]
    namespace: str
    ca_file: Path


async def _bound_to_cluster_admin(admin: client.ApiClient, namespace: str, name: str) -> None:
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-{name}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "namespace": namespace, "name": name}],
    }  # fmt: skip
    path = resource_path(group="rbac.authorization.k8s.io", version="v1", plural="clusterrolebindings")
    await request_json(admin, "POST", path, body=body)


def _two_contexts(admin: Path, nobody: Path, target: Path) -> str:
    first, second = yaml.safe_load(admin.read_text()), yaml.safe_load(nobody.read_text())
    merged = {
        **first,
        "users": first["users"] + second["users"],
        "contexts": first["contexts"] + second["contexts"],
    }
    target.write_text(yaml.safe_dump(merged))
    return str(second["current-context"])


@pytest.fixture(scope="module")
async def ids(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Identities]:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    root = tmp_path_factory.mktemp("kubeconfig-order")
    nobody = await asyncio.to_thread(control_plane.user, "kc-nobody")
    assert nobody.kubeconfig is not None
    admin_home, empty_home = root / "admin-home", root / "empty-home"
    (admin_home / ".kube").mkdir(parents=True)
    empty_home.mkdir()
    (admin_home / ".kube" / "config").write_bytes(control_plane.admin.kubeconfig.read_bytes())
    namespace = f"kc-{uuid.uuid4().hex[:6]}"
    api = api_client_for(control_plane.admin)
    try:
        await install_crd_and_rbac(api)
        mounted = {}
        for name in ("kc-admin-sa", "kc-plain-sa"):
            creds = await service_account_credentials(
                api, namespace, name, server=control_plane.url, ca_file=control_plane.admin.ca_file
            )
            assert creds.token is not None
            directory = root / name
            directory.mkdir()
            (directory / "token").write_text(creds.token)
            (directory / "ca.crt").write_bytes(control_plane.admin.ca_file.read_bytes())
            mounted[name] = directory
        await _bound_to_cluster_admin(api, namespace, "kc-admin-sa")
    finally:
        await api.close()
    (root / "no-token").mkdir()
    host, _, port = control_plane.url.removeprefix("https://").rpartition(":")
    ca, _cert, _key = serving_pair(root / "webhook")
    (root / "ca.crt").write_bytes(ca.cert_pem)
    both = root / "both.kubeconfig"
    yield Identities(
        admin=control_plane.admin.kubeconfig, nobody=nobody.kubeconfig, both=both,
        nobody_context=_two_contexts(control_plane.admin.kubeconfig, nobody.kubeconfig, both),
        admin_home=admin_home, empty_home=empty_home, admin_account=mounted["kc-admin-sa"],
        plain_account=mounted["kc-plain-sa"],
        plain_account_user=f"system:serviceaccount:{namespace}:kc-plain-sa", no_token=root / "no-token",
        service={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}, namespace=namespace,
        ca_file=root / "ca.crt",
    )  # fmt: skip


@dataclass(frozen=True)
class Case:
    flags: tuple[str, ...]
    env: dict[str, str]
    winner: str
    """Who must act: ``nobody``, ``plain-sa`` (no rights), ``admin``, or ``none`` (no credentials at all)."""


def cases(ids: Identities) -> dict[str, Case]:
    pod_admin = {**ids.service, "DRIFTWARDEN_SERVICE_ACCOUNT_DIR": str(ids.admin_account)}
    home = {"HOME": str(ids.admin_home)}
    return {
        "--kubeconfig beats $KUBECONFIG, the pod and ~/.kube/config": Case(
            ("--kubeconfig", str(ids.nobody)), {**home, **pod_admin, "KUBECONFIG": str(ids.admin)}, "nobody"
        ),
        "$KUBECONFIG beats the pod and ~/.kube/config": Case(
            (), {**home, **pod_admin, "KUBECONFIG": str(ids.nobody)}, "nobody"
        ),
        "the pod's service account beats ~/.kube/config": Case(
            (), {**home, **ids.service, "DRIFTWARDEN_SERVICE_ACCOUNT_DIR": str(ids.plain_account)}, "plain-sa"
        ),
        "--context picks a context of the kubeconfig": Case(
            ("--kubeconfig", str(ids.both), "--context", ids.nobody_context), home, "nobody"
        ),
        "~/.kube/config comes last": Case((), home, "admin"),
        "a service host without a token is no pod": Case(
            (), {**home, **ids.service, "DRIFTWARDEN_SERVICE_ACCOUNT_DIR": str(ids.no_token)}, "admin"
        ),
        "nothing at all": Case((), {"HOME": str(ids.empty_home)}, "none"),
    }


def commands(ids: Identities) -> dict[str, tuple[str, ...]]:
    certs = f"--namespace {ids.namespace} --validating-configuration none --mutating-configuration none"
    url = f"https://127.0.0.1:{free_port()}"
    install = f"webhook install --url {url} --skip-check --ca-file {ids.ca_file} --failure-policy Ignore"
    return {
        "app list": ("app", "list", "-A"),
        "certs check": ("certs", "check", *certs.split()),
        "certs rotate": ("certs", "rotate", *certs.split()),
        "webhook install": tuple(install.split()),
        "webhook uninstall": ("webhook", "uninstall"),
    }


async def run(
    argv: tuple[str, ...], env: Mapping[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``driftwarden ARGV`` in-process with ``env``; the root logger is put back (certs rotate sets it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    capsys.readouterr()
    try:
        code = await asyncio.to_thread(main, list(argv), env)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize(
    "command", ["app list", "certs check", "certs rotate", "webhook install", "webhook uninstall"]
)
async def test_every_command_takes_credentials_in_kubectls_order(
    command: str, ids: Identities, control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    assert control_plane.admin is not None
    argv = commands(ids)[command]
    admin = api_client_for(control_plane.admin)
    try:
        for name, case in cases(ids).items():
            code, text = await run((*argv, *case.flags), case.env, capsys)
            if case.winner == "admin":
                assert code in (0, 1) and "forbidden" not in text.lower(), (
                    f"{name}: {text}"
                )  # check: 1 = findings
            elif case.winner == "none":
                assert (
                    code == 2
                    and "no Kubernetes credentials: pass --kubeconfig FILE or set KUBECONFIG" in text
                )
            else:
                assert code == 2 and "forbidden" in text.lower(), f"{name}: {text}"
                if command == "app list":  # this message names who was refused
                    who = "kc-nobody" if case.winner == "nobody" else ids.plain_account_user
                    assert f'User "{who}" cannot list' in text, f"{name}: {text}"
            if command == "webhook install":
                await uninstall(admin)  # the admin cases installed them
    finally:
        await admin.close()


def test_auditor_run_takes_credentials_in_kubectls_order(ids: Identities) -> None:
    expected = {"nobody": ids.nobody, "admin": ids.admin_home / ".kube" / "config"}
    for name, case in cases(ids).items():
        args = build_parser().parse_args(["auditor", "run", *case.flags])
        if case.winner == "none":
            with pytest.raises(ConfigError, match="no Kubernetes credentials"):
                process_settings(args, case.env)
            continue
        kube = process_settings(args, case.env).kube
        if case.winner == "plain-sa":
            assert kube.in_cluster and kube.service_account_dir == ids.plain_account, name
        elif case.flags[-2:-1] == ("--context",):
            assert (kube.kubeconfigs, kube.context) == ((ids.both,), ids.nobody_context), name
        else:
            assert kube.kubeconfigs == (expected[case.winner],), name


async def test_auditor_run_uses_kubeconfig_from_the_environment(
    ids: Identities, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """The bug this replaced: without --kubeconfig, ``auditor run`` went for in-cluster credentials."""
    assert control_plane.admin is not None
    env = {k: v for k, v in environment().items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    # The auditor's own token kubeconfig (its RBAC from manifests/, never admin) found through $KUBECONFIG.
    own = tmp_path / "auditor.kubeconfig"
    await service_account_kubeconfig(control_plane, own, AUDITOR_SERVICE_ACCOUNT)
    env.update(KUBECONFIG=str(own), HOME=str(ids.empty_home), DRIFTWARDEN_CACHE=str(tmp_path / "cache"))
    argv = ["auditor", "run", "--namespace", ids.namespace, "--leader-election-namespace", ids.namespace,
            "--leader-id", "from-env", "--lease-duration", "3", "--metrics-port", "0",
            "--git-cache", str(tmp_path / "git")]  # fmt: skip
    log = tmp_path / "auditor.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", *argv, cwd=ROOT, env=env, stdout=out, stderr=out
        )
    admin = api_client_for(control_plane.admin)
    path = resource_path(group="coordination.k8s.io", version="v1", plural="leases", namespace=ids.namespace,
                         name="driftwarden-auditor")  # fmt: skip
    try:
        async with asyncio.timeout(60):
            while True:
                assert proc.returncode is None, log.read_text()
                try:
                    lease = await request_json(admin, "GET", path)
                    if lease["spec"].get("holderIdentity") == "from-env":
                        break
                except KubeError as exc:
                    assert exc.status == 404
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0, log.read_text()
    assert "started leading as from-env" in log.read_text()
