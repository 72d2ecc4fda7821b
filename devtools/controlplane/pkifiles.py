"""The TLS material the local control plane needs, written into its work directory.

Three trust roots, as in a real cluster: a serving CA for kube-apiserver's own certificate, a client CA
whose certificates authenticate users (CN = user, O = groups), and an RSA key pair that signs
service-account tokens. Key and certificate generation is delegated to ``certs.pki``; this module only
decides names and writes files (mode 0600 for keys).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from certs.pki import CertRequest, KeyPair, issue, new_ca, service_account_key

CA_VALIDITY = dt.timedelta(days=365)
LEAF_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class ControlPlanePki:
    """Paths of the control plane's TLS files, and the CAs kept in memory to issue user certificates."""

    directory: Path
    serving_ca: KeyPair
    client_ca: KeyPair

    @property
    def serving_ca_file(self) -> Path:
        return self.directory / "serving-ca.crt"

    @property
    def client_ca_file(self) -> Path:
        return self.directory / "client-ca.crt"

    @property
    def apiserver_cert_file(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key_file(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def sa_key_file(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub_file(self) -> Path:
        return self.directory / "sa.pub"

    def issue_user(self, user: str, *, groups: tuple[str, ...] = (), now: dt.datetime) -> KeyPair:
        """A client certificate that the API server authenticates as ``user`` in ``groups``."""
        request = CertRequest(common_name=user, organizations=groups, client=True, validity=LEAF_VALIDITY)
        return issue(request, ca=self.client_ca, now=now)


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.write_bytes(data)
    if secret:
        path.chmod(0o600)


def create_pki(directory: Path, *, now: dt.datetime) -> ControlPlanePki:
    """Generate and write every file kube-apiserver needs for TLS, client auth and SA tokens."""
    directory.mkdir(parents=True, exist_ok=True)
    serving_ca = new_ca("driftwarden-local-serving-ca", now=now, validity=CA_VALIDITY)
    client_ca = new_ca("driftwarden-local-client-ca", now=now, validity=CA_VALIDITY)
    pki = ControlPlanePki(directory, serving_ca, client_ca)
    serving = issue(
        CertRequest(
            common_name="kube-apiserver",
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ip_addresses=("127.0.0.1", "10.0.0.1"),
            server=True,
            validity=LEAF_VALIDITY,
        ),
        ca=serving_ca,
        now=now,
    )
    sa_private, sa_public = service_account_key()
    _write(pki.serving_ca_file, serving_ca.cert_pem)
    _write(pki.client_ca_file, client_ca.cert_pem)
    _write(pki.apiserver_cert_file, serving.cert_pem)
    _write(pki.apiserver_key_file, serving.key_pem, secret=True)
    _write(pki.sa_key_file, sa_private, secret=True)
    _write(pki.sa_pub_file, sa_public)
    return pki
