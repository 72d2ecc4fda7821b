"""Least privilege: what each of driftwarden's identities may do is exactly the set docs/security.md lists.

The manifests' service accounts and RBAC are installed from manifests/ (tests.support.identities), and
``kubectl auth can-i --list`` is asked as each service account itself (its own token, so its groups count
too, as for a pod), in the install namespace and in an ordinary one. Every row must be documented, and every
documented row granted: a rule added to the manifests without a line in the docs fails here, and so does a
documented permission the manifests lost.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.support.identities import IDENTITIES, install_manifests_rbac, service_account_kubeconfig
from tests.support.kubectl import kubectl

pytestmark = pytest.mark.cluster

DOC = Path(__file__).parents[2] / "docs/security.md"
NAMESPACES = (contract.DEFAULT_INSTALL_NAMESPACE, "default")
_ROW = re.compile(r"^(\S*)\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s+(\[[^\]]*\])$")
_BLOCK = re.compile(r"^```can-i (\S+) (\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

Row = tuple[str, str, str, str]


def rows(table: str) -> set[Row]:
    """``kubectl auth can-i --list`` (or a block of the doc) as (resources, URLs, names, verbs) rows;
    verbs sorted, so the order kubectl happens to print them in does not matter."""
    found: set[Row] = set()
    for line in table.splitlines():
        match = _ROW.match(line.rstrip()) if not line.startswith("Resources") else None
        if match is None:
            continue
        resource, urls, names, verbs = match.groups()
        resource = "" if resource == "-" else resource  # the doc's mark for a row of non-resource URLs
        found.add((resource, urls, names, "[" + " ".join(sorted(verbs[1:-1].split())) + "]"))
    return found


def documented() -> dict[tuple[str, str], set[Row]]:
    """The doc's ```can-i <identity> <namespace>``` blocks, each with the ```can-i everyone *``` rows (what
    Kubernetes' default roles give every authenticated user) added."""
    blocks = {(m[1], m[2]): rows(m[3]) for m in _BLOCK.finditer(DOC.read_text())}
    everyone = blocks.pop(("everyone", "*"))
    assert set(blocks) == {(who, ns) for who in IDENTITIES for ns in NAMESPACES}, sorted(blocks)
    return {where: table | everyone for where, table in blocks.items()}


def test_the_documented_sets_parse() -> None:
    sets = documented()
    assert ("", "[/version]", "[]", "[get]") in sets[("driftwarden-webhook", "default")]
    assert ("secrets", "[]", "[driftwarden-webhook-tls]", "[get]") in sets[
        ("driftwarden-webhook", contract.DEFAULT_INSTALL_NAMESPACE)
    ]


@pytest.mark.parametrize("identity", IDENTITIES)
async def test_each_identity_may_do_exactly_what_the_docs_say(
    control_plane: ControlPlane, tmp_path: Path, identity: str
) -> None:
    await install_manifests_rbac(control_plane)
    config = await service_account_kubeconfig(control_plane, tmp_path / f"{identity}.kubeconfig", identity)
    expected = documented()
    for namespace in NAMESPACES:
        code, out, err = await kubectl(control_plane, config, "auth", "can-i", "--list", "-n", namespace)
        assert code == 0, err
        granted = rows(out)
        assert granted, out
        want = expected[(identity, namespace)]
        assert granted == want, (
            f"{identity} in {namespace}: granted but not documented {sorted(granted - want)}; "
            f"documented but not granted {sorted(want - granted)}"
        )
