"""kubectl's order of credentials (driftwarden.settings.kube_access), and loading them for real.

The order: ``--kubeconfig``, then ``$KUBECONFIG``, then the pod's service account (``KUBERNETES_SERVICE_HOST``
set and the token file present), then ``~/.kube/config``; nothing found is a ConfigError that says what to
do. The cluster tests load each kind for real (driftwarden.kube.client.api_client) and ask the API server
who they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from devtools.controlplane import ControlPlane
from devtools.controlplane.serviceaccounts import service_account_credentials
from driftwarden.errors import ConfigError
from driftwarden.kube.client import api_client, api_client_for
from driftwarden.kube.rest import request_json
from driftwarden.settings import SERVICE_ACCOUNT_DIR, KubeAccess, kube_access


class Place:
    """A home with ~/.kube/config, two more kubeconfig files and a mounted service-account directory."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home_config = self.home / ".kube" / "config"
        self.flag = root / "flag.kubeconfig"
        self.listed = root / "listed.kubeconfig"
        self.account = root / "serviceaccount"
        for path in (self.home_config, self.flag, self.listed, self.account / "token"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")

    def env(self, **more: str) -> dict[str, str]:
        return {"HOME": str(self.home), "DRIFTWARDEN_SERVICE_ACCOUNT_DIR": str(self.account), **more}


@pytest.fixture
def place(tmp_path: Path) -> Place:
    return Place(tmp_path)


POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_the_flag_comes_first(place: Place) -> None:
    chosen = kube_access(place.env(KUBECONFIG=str(place.listed), **POD), kubeconfig=place.flag, context="dev")
    assert (chosen.source, chosen.kubeconfigs, chosen.context) == ("--kubeconfig", (place.flag,), "dev")


def test_then_kubeconfig_from_the_environment_with_missing_entries_skipped_as_kubectl_does(
    place: Place,
) -> None:
    listing = os.pathsep.join([str(place.home / "missing"), str(place.listed), str(place.flag)])
    chosen = kube_access(place.env(KUBECONFIG=listing, **POD))
    assert (chosen.source, chosen.kubeconfigs) == ("$KUBECONFIG", (place.listed, place.flag))
    assert "$KUBECONFIG" in chosen.describe()


def test_then_the_service_account_in_a_pod(place: Place) -> None:
    chosen = kube_access(place.env(**POD))
    assert chosen.in_cluster and chosen.source == "in-cluster"
    assert (chosen.service_host, chosen.service_port, chosen.service_account_dir) == (
        "10.96.0.1", "443", place.account,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="--context dev needs a kubeconfig"):
        kube_access(place.env(**POD), context="dev")


def test_a_service_host_without_a_token_is_not_a_pod(place: Place) -> None:
    (place.account / "token").unlink()
    chosen = kube_access(place.env(**POD))
    assert (chosen.source, chosen.kubeconfigs) == ("~/.kube/config", (place.home_config,))


def test_then_the_home_kubeconfig(place: Place) -> None:
    chosen = kube_access(place.env(), context="dev")
    assert (chosen.source, chosen.kubeconfigs, chosen.context) == (
        "~/.kube/config",
        (place.home_config,),
        "dev",
    )
    assert not kube_access({"HOME": str(place.home)}).in_cluster  # the default directory has no token here


def test_nothing_found_says_what_to_do(place: Place) -> None:
    place.home_config.unlink()
    with pytest.raises(ConfigError) as none:
        kube_access(place.env())
    assert "pass --kubeconfig FILE or set KUBECONFIG" in str(none.value)
    assert "KUBERNETES_SERVICE_HOST unset" in str(none.value)
    with pytest.raises(ConfigError, match=r"does not exist or is not a file \(--kubeconfig\)"):
        kube_access(place.env(), kubeconfig=place.home / "nope")
    with pytest.raises(
        ConfigError, match=r"\(\$KUBECONFIG\) does not exist; fix KUBECONFIG or pass --kubeconfig"
    ):
        kube_access(place.env(KUBECONFIG=str(place.home / "nope")))


def test_the_default_service_account_directory_is_where_kubernetes_mounts_it() -> None:
    assert Path("/var/run/secrets/kubernetes.io/serviceaccount") == SERVICE_ACCOUNT_DIR


async def whoami(api: client.ApiClient) -> str:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    answer = await request_json(api, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
    return str(answer["status"]["userInfo"]["username"])


@pytest.mark.cluster
async def test_each_kind_of_credentials_loads_and_acts_as_its_user(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    alice = control_plane.user("alice-access")
    assert alice.kubeconfig is not None
    admin = api_client_for(control_plane.admin)
    try:
        account = await service_account_credentials(
            admin, "access-test", "reader", server=control_plane.url, ca_file=control_plane.admin.ca_file
        )
    finally:
        await admin.close()
    mounted = tmp_path / "serviceaccount"
    mounted.mkdir()
    assert account.token is not None
    (mounted / "token").write_text(account.token)
    (mounted / "ca.crt").write_bytes(control_plane.admin.ca_file.read_bytes())
    host, _, port = control_plane.url.removeprefix("https://").rpartition(":")
    pod = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
           "DRIFTWARDEN_SERVICE_ACCOUNT_DIR": str(mounted), "HOME": str(tmp_path)}  # fmt: skip
    merged = os.pathsep.join([str(alice.kubeconfig), str(control_plane.admin.kubeconfig)])
    cases = [
        ("system:serviceaccount:access-test:reader", kube_access(pod)),
        ("alice-access", kube_access(pod, kubeconfig=alice.kubeconfig)),
        ("admin", kube_access({**pod, "KUBECONFIG": str(control_plane.admin.kubeconfig)})),
        # merged as kubectl merges them: the first file's current-context wins
        ("alice-access", kube_access({**pod, "KUBECONFIG": merged})),
    ]
    for user, chosen in cases:
        async with await api_client(chosen) as api:
            assert await whoami(api) == user, chosen.describe()


@pytest.mark.cluster
async def test_credentials_that_do_not_load_name_the_file_and_what_to_check(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    chosen = KubeAccess("--kubeconfig", (control_plane.admin.kubeconfig,), context="no-such-context")
    with pytest.raises(ConfigError) as bad:
        await api_client(chosen)
    assert f"cannot load Kubernetes credentials from kubeconfig {control_plane.admin.kubeconfig}" in str(
        bad.value
    )
    assert "--context" in str(bad.value)
    empty = tmp_path / "account"
    empty.mkdir()
    with pytest.raises(ConfigError, match="in-cluster service account"):
        await api_client(KubeAccess("in-cluster", (), None, "127.0.0.1", "1", empty))
