"""What the webhook's certificates are for and how long they live: names, lifetimes, renewal times.

Pure core of ``certs``: frozen settings and date arithmetic. A certificate is renewed at two thirds of its
life or ``renew_before`` ahead of expiry, whichever comes first (Gatekeeper's rotator renews 90 days
ahead; cert-manager at 2/3). It must not read the clock, files or the environment.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from certs.facts import CertFacts
from certs.pki import CertRequest
from driftwarden.errors import ConfigError

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    """Lifetimes of the CA and the serving certificate, and when to renew each."""

    ca_validity: dt.timedelta = 3650 * DAY
    serving_validity: dt.timedelta = 365 * DAY
    renew_fraction: float = 2 / 3
    """Renew once this fraction of a certificate's life has passed..."""
    ca_renew_before: dt.timedelta = 365 * DAY
    """...or once the CA has less than this left, whichever comes first."""
    serving_renew_before: dt.timedelta = 30 * DAY
    propagation: dt.timedelta = dt.timedelta(minutes=5)
    """How long a new CA must have been in every published caBundle before a certificate it signed
    is served: time for every API server (and anything reading ca.crt from the Secret) to pick it up."""

    def __post_init__(self) -> None:
        if not 0 < self.renew_fraction <= 1:
            raise ConfigError(f"renew fraction must be in (0, 1], not {self.renew_fraction}")
        if self.serving_validity <= dt.timedelta(0) or self.propagation < dt.timedelta(0):
            raise ConfigError("certificate validity must be positive and propagation not negative")
        if self.serving_renew_before >= self.serving_validity:
            raise ConfigError("serving certificate would be due for renewal as soon as it is issued")
        if self.ca_renew_before >= self.ca_validity or self.serving_validity >= self.ca_validity:
            raise ConfigError("the CA must outlive its renewal margin and the serving certificates it signs")

    def ca_renewal_due(self, ca: CertFacts) -> dt.datetime:
        """When the CA must be replaced: its renewal time, or before it could no longer outlive a
        serving certificate issued then (a leaf must never outlive the CA that signed it)."""
        return min(
            renew_at(ca, fraction=self.renew_fraction, before=self.ca_renew_before),
            ca.not_after - self.serving_validity,
        )

    def serving_renewal_due(self, serving: CertFacts) -> dt.datetime:
        return renew_at(serving, fraction=self.renew_fraction, before=self.serving_renew_before)


def renew_at(cert: CertFacts, *, fraction: float, before: dt.timedelta) -> dt.datetime:
    """The earlier of "``fraction`` of the life has passed" and "``before`` is left"."""
    return min(cert.not_before + cert.lifetime * fraction, cert.not_after - before)


@dataclass(frozen=True)
class ServingNames:
    """The names the webhook is reached by: its Service's DNS names, plus any IPs asked for."""

    service: str
    namespace: str
    ip_addresses: tuple[str, ...] = ()
    extra_dns_names: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"

    def __post_init__(self) -> None:
        if not self.service or not self.namespace:
            raise ConfigError("the webhook's Service name and namespace are both needed")
        for ip in self.ip_addresses:
            try:
                ipaddress.ip_address(ip)
            except ValueError as exc:
                raise ConfigError(f"not an IP address: {ip!r}") from exc

    @property
    def dns_names(self) -> tuple[str, ...]:
        svc, ns = self.service, self.namespace
        names = (svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.{self.cluster_domain}")
        return names + tuple(n for n in self.extra_dns_names if n not in names)

    @property
    def canonical_ips(self) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_address(ip)) for ip in self.ip_addresses)

    def request(self, *, validity: dt.timedelta) -> CertRequest:
        """The serving certificate request: CN and SANs, server usage only."""
        return CertRequest(
            common_name=f"{self.service}.{self.namespace}.svc",
            dns_names=self.dns_names,
            ip_addresses=self.canonical_ips,
            server=True,
            validity=validity,
        )

    def missing_from(self, cert: CertFacts) -> tuple[str, ...]:
        """Names this webhook is reached by that ``cert`` does not carry (empty when it matches)."""
        have_dns = {d.lower() for d in cert.dns_names}
        have_ips = {str(ipaddress.ip_address(ip)) for ip in cert.ip_addresses}
        missing = [d for d in self.dns_names if d.lower() not in have_dns]
        missing.extend(ip for ip in self.canonical_ips if ip not in have_ips)
        return tuple(missing)
