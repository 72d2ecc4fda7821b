"""Failures a user meets before anything works: one clear line on stderr and exit code 2, never a traceback.

An API server nobody answers for, a port already taken (``webhook serve``, ``auditor run --metrics-port``),
and ``webhook install`` pointed at a URL where no webhook answers, or answers with a certificate the CA
bundle does not trust: with failurePolicy Fail, installing that would stop every write to managed objects.
These need no cluster: each fails before the first API request, or at it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from opentelemetry import trace

from certs.pki import new_ca
from cli.main import main
from devtools.controlplane.kubeconfig import kubeconfig
from devtools.jaeger import free_port
from tests.support.guard import serving_pair
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.server import ServerSettings, WebhookServer

ROOT = Path(__file__).resolve().parents[2]


def dead_kubeconfig(directory: Path) -> tuple[Path, int]:
    """A valid kubeconfig naming an API server at a port where nothing listens."""
    port = free_port()
    ca = new_ca("nobody-serves-this", now=dt.datetime.now(dt.UTC), validity=dt.timedelta(days=1))
    path = directory / "dead.kubeconfig"
    path.write_text(
        yaml.safe_dump(kubeconfig(f"https://127.0.0.1:{port}", ca_pem=ca.cert_pem, user="dead", token="t"))
    )
    return path, port


def run(capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv), env={"HOME": "/nonexistent"} if env is None else env)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ("app", "list"),
        ("certs", "check"),
        ("certs", "rotate"),
        ("webhook", "uninstall"),
    ],
)
def test_an_api_server_nobody_answers_for_is_one_line_and_exit_2(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kubeconfig, port = dead_kubeconfig(tmp_path)
    code, err = run(capsys, *argv, "--kubeconfig", str(kubeconfig))
    assert code == 2, err
    assert err.startswith("driftwarden: error: ") and f"127.0.0.1:{port}" in err
    assert f"is it running, and does kubeconfig {kubeconfig} (--kubeconfig) name the cluster you mean" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_no_credentials_anywhere_says_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(capsys, "webhook", "uninstall", env={"HOME": str(tmp_path)})
    assert code == 2
    assert err.strip() == (
        "driftwarden: error: no Kubernetes credentials: pass --kubeconfig FILE or set KUBECONFIG "
        f"({tmp_path}/.kube/config does not exist; not in a pod (KUBERNETES_SERVICE_HOST unset))"
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def cli_process(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_webhook_serve_on_a_busy_port_is_one_line_and_exit_2(busy_port: int, tmp_path: Path) -> None:
    _ca, cert, key = serving_pair(tmp_path)
    done = cli_process("webhook", "serve", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                       "--host", "127.0.0.1", "--port", str(busy_port), "--metrics-port", "0")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"driftwarden: error: cannot listen on 127.0.0.1:{busy_port} for the admission webhook: "
        f"error while attempting to bind on address ('127.0.0.1', {busy_port}): address already in use"
    ]


def test_auditor_metrics_on_a_busy_port_is_one_line_and_exit_2(busy_port: int, tmp_path: Path) -> None:
    kubeconfig, _ = dead_kubeconfig(tmp_path)  # the client is made, but nothing is asked before metrics bind
    done = cli_process("auditor", "run", "--kubeconfig", str(kubeconfig), "--no-leader-elect",
                       "--git-cache", str(tmp_path / "git"), "--metrics-port", str(busy_port))  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"driftwarden: error: cannot listen on 0.0.0.0:{busy_port} for metrics: ")
    assert "address already in use" in line


def install_argv(url: str, ca_file: Path, kubeconfig: Path, *more: str) -> list[str]:
    return ["webhook", "install", "--url", url, "--ca-file", str(ca_file), "--kubeconfig", str(kubeconfig),
            "--timeout-seconds", "2", *more]  # fmt: skip


def test_install_refuses_a_url_where_nothing_listens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ca, _cert, _key = serving_pair(tmp_path)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    kubeconfig, api_port = dead_kubeconfig(tmp_path)
    url = f"https://127.0.0.1:{free_port()}"
    code, err = run(capsys, *install_argv(url, tmp_path / "ca.crt", kubeconfig))
    assert code == 2
    assert err.startswith(f"driftwarden: error: not installing: nothing answers at {url}: ")
    assert "with failurePolicy Fail the API server would refuse every write to managed objects" in err
    assert "pass --skip-check to install anyway" in err and len(err.strip().splitlines()) == 1
    # It stopped before the cluster: the (dead) API server would otherwise be the error.
    assert str(api_port) not in err
    # With --skip-check it goes on to the API server.
    code, err = run(capsys, *install_argv(url, tmp_path / "ca.crt", kubeconfig, "--skip-check"))
    assert code == 2 and f"127.0.0.1:{api_port}" in err and "is it running" in err


async def test_install_checks_tls_with_the_ca_bundle_it_installs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ca, cert, key = serving_pair(tmp_path / "webhook")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    stranger = new_ca("stranger", now=dt.datetime.now(dt.UTC), validity=dt.timedelta(days=1))
    (tmp_path / "stranger.crt").write_bytes(stranger.cert_pem)
    kubeconfig, api_port = dead_kubeconfig(tmp_path)
    app = make_app(make_settings(), tracer=trace.get_tracer("test"))
    async with WebhookServer(app, ServerSettings(cert, key, host="127.0.0.1", port=0)) as server:
        url = f"https://127.0.0.1:{server.port}"
        code, err = await asyncio.to_thread(
            run, capsys, *install_argv(url, tmp_path / "stranger.crt", kubeconfig)
        )
        assert code == 2
        assert f"not installing: {url} presents a certificate the CA bundle does not trust" in err
        # The right bundle passes the check; only the (dead) API server stops it then.
        code, err = await asyncio.to_thread(run, capsys, *install_argv(url, tmp_path / "ca.crt", kubeconfig))
        assert code == 2 and f"127.0.0.1:{api_port}" in err and "is it running" in err
