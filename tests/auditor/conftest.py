"""Fixtures of the auditor's cluster tests: the CRD and the auditor's RBAC installed once per module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from auditor.kube.cluster import Cluster
from devtools.controlplane import ControlPlane
from driftwarden.kube.client import api_client_for
from tests.support.auditor import install_crd_and_rbac
from tests.support.auditorprocs import auditors, site  # noqa: F401 - fixtures, found by name


@pytest.fixture(scope="module")
async def admin(control_plane: ControlPlane) -> AsyncIterator[Cluster]:
    """An admin Cluster, with the Application CRD and the auditor's ClusterRole + binding installed."""
    assert control_plane.admin is not None
    api = api_client_for(control_plane.admin)
    await install_crd_and_rbac(api)
    yield Cluster(api)
    await api.close()
