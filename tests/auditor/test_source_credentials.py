"""Repository credentials come from labelled Secrets in the install namespace (real API server)."""

from __future__ import annotations

import base64
import uuid

import pytest
from kubernetes_asyncio import client

from auditor.source.resolve import SECRET_TYPE_LABEL, repository_credentials
from tests.support.clients import Clients
from tests.support.guard import ensure_namespace

pytestmark = pytest.mark.cluster


def _secret(name: str, *, labelled: bool = True, **data: str) -> client.V1Secret:
    labels = {SECRET_TYPE_LABEL: "repository"} if labelled else {}
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), data=encoded)


async def test_the_longest_matching_url_wins_and_unlabelled_secrets_are_ignored(clients: Clients) -> None:
    ns = f"creds-{uuid.uuid4().hex[:6]}"
    await ensure_namespace(clients.admin, ns)
    core = client.CoreV1Api(clients.admin)
    await core.create_namespaced_secret(
        ns, _secret("org", url="https://git.example.com/org", password="org-token")
    )
    await core.create_namespaced_secret(
        ns, _secret("infra", url="https://git.example.com/org/infra", username="bot", password="infra-token")
    )
    await core.create_namespaced_secret(
        ns, _secret("stray", labelled=False, url="https://git.example.com/org/infra.git", password="nope")
    )
    await core.create_namespaced_secret(
        ns, _secret("ssh", url="git@git.example.com:", sshPrivateKey="-----BEGIN KEY-----", knownHosts="h k")
    )

    infra = await repository_credentials(clients.admin, "https://git.example.com/org/infra.git", namespace=ns)
    assert infra is not None and (infra.username, infra.password) == ("bot", "infra-token")
    other = await repository_credentials(clients.admin, "https://git.example.com/org/web.git", namespace=ns)
    assert other is not None and other.password == "org-token"
    ssh = await repository_credentials(clients.admin, "git@git.example.com:org/web.git", namespace=ns)
    assert ssh is not None and (ssh.ssh_private_key, ssh.known_hosts) == ("-----BEGIN KEY-----", "h k")
    assert (
        await repository_credentials(clients.admin, "https://elsewhere.example/x.git", namespace=ns) is None
    )
    assert "infra-token" not in repr(infra)  # secrets stay out of reprs (and so out of logs)
