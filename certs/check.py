"""``driftwarden certs check``'s judgement: is the webhook's TLS material sound, and for how long?

Pure core of ``certs``: certificate bytes and the time in, a list of findings out. Expiry inside the
warning window, a name the webhook is reached by but the certificate lacks, a key that does not belong to
the certificate, and a bundle that does not trust it are errors (the command exits non-zero). It must not
read files, the clock or the cluster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from certs.facts import CertFacts, CertificateFormatError, bundle_facts, facts, issuer_in, pair_matches
from certs.pki import KeyPair
from certs.policy import ServingNames

Severity = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper():7} {self.subject}: {self.message}"


def _days(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} days"


def _expiry(subject: str, cert: CertFacts, *, now: dt.datetime, warn_within: dt.timedelta) -> Finding:
    if now < cert.not_before:
        return Finding("error", subject, f"not valid before {cert.not_before.isoformat()}")
    if cert.expired_at(now):
        return Finding("error", subject, f"expired at {cert.not_after.isoformat()}")
    left = cert.not_after - now
    if left <= warn_within:
        return Finding("error", subject, f"expires in {_days(left)}, at {cert.not_after.isoformat()}")
    return Finding("ok", subject, f"valid until {cert.not_after.isoformat()} ({_days(left)} left)")


def check_material(
    serving_pem: bytes,
    *,
    key_pem: bytes | None = None,
    bundle: bytes = b"",
    names: ServingNames | None = None,
    published: Mapping[str, bytes] | None = None,
    now: dt.datetime,
    warn_within: dt.timedelta,
) -> tuple[Finding, ...]:
    """Findings about a serving certificate, its key, the CA bundle and every published caBundle."""
    subject = "serving certificate"
    try:
        cert = facts(serving_pem)
    except CertificateFormatError as exc:
        return (Finding("error", subject, str(exc)),)
    found = [_expiry(f"{subject} {cert.subject}", cert, now=now, warn_within=warn_within)]
    if names is not None:
        missing = names.missing_from(cert)
        if missing:
            found.append(Finding("error", subject, f"lacks subject alternative names {', '.join(missing)}"))
        else:
            found.append(Finding("ok", subject, f"names {', '.join(names.dns_names + names.canonical_ips)}"))
    if key_pem is not None:
        if pair_matches(KeyPair(serving_pem, key_pem)):
            found.append(Finding("ok", subject, "private key matches"))
        else:
            found.append(Finding("error", subject, "private key does not belong to the certificate"))
    cas = bundle_facts(bundle)
    if bundle or not published:
        found.extend(_trust(cert, cas, "CA bundle", now=now, warn_within=warn_within))
    for name, blob in sorted((published or {}).items()):
        found.extend(
            _trust(cert, bundle_facts(blob), f"caBundle of {name}", now=now, warn_within=warn_within)
        )
    return tuple(found)


def _trust(
    cert: CertFacts, cas: tuple[CertFacts, ...], where: str, *, now: dt.datetime, warn_within: dt.timedelta
) -> list[Finding]:
    if not cas:
        return [Finding("error", where, "holds no certificate")]
    issuer = issuer_in(cert.pem, among=cas)
    if issuer is None:
        return [Finding("error", where, "does not trust the serving certificate (no CA in it signed it)")]
    found = [Finding("ok", where, f"trusts the serving certificate through CA {issuer.fingerprint[:16]}")]
    for ca in cas:
        label = f"{where}: CA {ca.subject} {ca.fingerprint[:16]}"
        if ca == issuer:
            found.append(_expiry(label, ca, now=now, warn_within=warn_within))
        elif ca.expired_at(now):
            found.append(Finding("warning", label, "expired; the rotator prunes it from the bundle"))
        else:
            found.append(Finding("ok", label, f"also trusted until {ca.not_after.isoformat()}"))
    return found


def failed(findings: tuple[Finding, ...]) -> bool:
    return any(f.severity == "error" for f in findings)
