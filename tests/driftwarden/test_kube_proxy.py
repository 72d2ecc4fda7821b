"""Proxies for the Kubernetes clients: decided once from settings, never looked up per request (issue 17).

``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are read once by ``driftwarden.settings`` (lower case first);
``driftwarden.kube.client`` picks the proxy for the API server's URL when it builds a client (a
kubeconfig's ``proxy-url`` first) and its HTTP session never trusts the environment, so aiohttp no longer
looks the variables and ``~/.netrc`` up in a thread for every request. The cluster tests go through a real
HTTP CONNECT proxy (tests/support/tcpproxy.py) to the real API server.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from devtools.controlplane import ControlPlane
from driftwarden.kube.client import api_client, api_client_for, bypassed, proxy_for
from driftwarden.settings import ProxyEnvironment, kube_access, proxy_environment
from tests.driftwarden.test_kube_access import whoami
from tests.support.tcpproxy import ConnectProxy


def test_the_proxy_variables_are_read_once_lower_case_first() -> None:
    env = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128 ", "HTTP_PROXY": "http://h:80",
           "NO_PROXY": ".internal,10.0.0.1"}  # fmt: skip
    assert proxy_environment(env) == ProxyEnvironment(
        "http://lower:3128", "http://h:80", ".internal,10.0.0.1"
    )
    # An empty lower-case variable turns the upper-case one off, as in urllib.
    assert proxy_environment({"HTTPS_PROXY": "http://upper:3128", "https_proxy": ""}).https == ""
    assert proxy_environment({}) == ProxyEnvironment()


def test_kube_access_carries_the_proxies(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("x")
    chosen = kube_access({"HTTPS_PROXY": "http://proxy:3128"}, kubeconfig=kubeconfig)
    assert chosen.proxies == ProxyEnvironment(https="http://proxy:3128")


def test_the_proxy_is_chosen_by_scheme_unless_no_proxy_names_the_host() -> None:
    proxies = ProxyEnvironment("http://s:3128", "http://p:3128", "")
    assert proxy_for("https://api.example.com:6443", proxies) == "http://s:3128"
    assert proxy_for("http://api.example.com:8080", proxies) == "http://p:3128"
    assert proxy_for("https://api.example.com", ProxyEnvironment(http="http://p:3128")) is None
    assert proxy_for("https://api.example.com", ProxyEnvironment()) is None
    only = ProxyEnvironment(https="http://s:3128", no_proxy="example.com")
    assert proxy_for("https://API.Example.com:6443", only) is None


@pytest.mark.parametrize(
    ("host", "no_proxy", "expected"),
    [
        ("api.example.com", "*", True),
        ("api.example.com", "example.com", True),
        ("api.example.com", ".example.com", True),
        ("example.com", ".example.com", True),
        ("api.example.com", " other.org , EXAMPLE.com ", True),
        ("10.0.0.1", "10.0.0.1", True),
        ("api.example.com", "ample.com", False),
        ("api.example.com", "api.example.co", False),
        ("api.example.com", "", False),
        ("api.example.com", ",,", False),
    ],
)
def test_no_proxy_matches_hosts_and_domains_as_urllib_does(host: str, no_proxy: str, expected: bool) -> None:
    assert bypassed(host, no_proxy) is expected


@pytest.mark.cluster
async def test_the_session_ignores_proxy_variables_it_was_not_given(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy in the process environment that is not in the settings: a session that trusted the
    # environment would send every request to this closed port.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    assert control_plane.admin is not None
    async with api_client_for(control_plane.admin) as api:
        assert not api.rest_client.pool_manager.trust_env
        assert await whoami(api) == "admin"


@pytest.mark.cluster
async def test_requests_go_through_the_configured_proxy(control_plane: ControlPlane) -> None:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    authority = control_plane.url.removeprefix("https://")
    async with ConnectProxy() as proxy:
        env = {
            "HTTPS_PROXY": f"http://bob:s3cret@{proxy.url}",
            "KUBECONFIG": str(control_plane.admin.kubeconfig),
        }
        async with await api_client(kube_access(env)) as api:
            assert await whoami(api) == "admin"
            assert await whoami(api) == "admin"
        assert proxy.requests, "nothing went through the proxy"
        line, headers = proxy.requests[0]
        assert line == f"CONNECT {authority} HTTP/1.1"
        assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"bob:s3cret").decode()

        # NO_PROXY naming the API server's host: straight to it.
        seen = len(proxy.requests)
        host = authority.rpartition(":")[0]
        async with await api_client(kube_access({**env, "NO_PROXY": host})) as api:
            assert await whoami(api) == "admin"
        assert len(proxy.requests) == seen


@pytest.mark.cluster
async def test_a_kubeconfig_proxy_url_comes_before_the_environment(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    config = yaml.safe_load(control_plane.admin.kubeconfig.read_text())
    async with ConnectProxy() as proxy:
        for cluster in config["clusters"]:
            cluster["cluster"]["proxy-url"] = proxy.proxy_url
        kubeconfig = tmp_path / "proxied.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        # The environment names a closed port: kubectl's order puts the kubeconfig's proxy-url first.
        access = kube_access({"HTTPS_PROXY": "http://127.0.0.1:9"}, kubeconfig=kubeconfig)
        async with await api_client(access) as api:
            assert await whoami(api) == "admin"
        assert [line.split(" ")[0] for line, _ in proxy.requests] == ["CONNECT"] * len(proxy.requests)
        assert proxy.requests
