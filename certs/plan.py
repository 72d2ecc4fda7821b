"""The rotator's decisions: given what is stored and the time, the one next step to take.

Pure core of ``certs``. The rotation is a small state machine, re-planned after every step, so a crash
between two writes only means the next run resumes where this one stopped:

1. no usable CA, or the CA is due → ``NewCA`` (the old one is kept as *retired*, still trusted);
2. the published trust (every webhook's caBundle, ca.crt of the TLS Secret) is not the desired bundle
   — the active CA plus every unexpired retired CA — or is not yet recorded → ``Publish``;
3. the serving certificate is missing, broken, misnamed, due, or signed by an older CA → ``IssueServing``,
   but when that changes the signing CA and the current certificate still works, only once the new CA has
   been published for ``policy.propagation`` → until then ``Wait``. So no client ever sees a certificate
   from a CA its bundle does not hold (the Kyverno CA-expiry outages);
4. otherwise ``Done``, with the time the next step falls due.

It must not do I/O, read the clock, or generate keys; ``certs.rotate`` carries the steps out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from certs.facts import (
    CertFacts,
    CertificateFormatError,
    bundle_facts,
    facts,
    issuer_in,
    join_bundle,
    pair_matches,
    signed_by,
)
from certs.pki import KeyPair
from certs.policy import Policy, ServingNames


@dataclass(frozen=True)
class PublishMark:
    """Records that the CA with ``fingerprint`` has been in every published bundle since ``at``."""

    fingerprint: str
    at: dt.datetime

    def encode(self) -> str:
        return f"{self.fingerprint}@{self.at.isoformat()}"

    @staticmethod
    def decode(text: str | None) -> PublishMark | None:
        fingerprint, sep, at = (text or "").partition("@")
        if not sep or not fingerprint:
            return None
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            return None
        return PublishMark(fingerprint, when if when.tzinfo else when.replace(tzinfo=dt.UTC))


@dataclass(frozen=True)
class Stored:
    """Everything the rotator found: the two Secrets and the webhook configurations."""

    ca: KeyPair | None = None
    retired: bytes = b""
    """PEM bundle of CAs that signed before the active one and are still trusted."""
    mark: PublishMark | None = None
    serving: KeyPair | None = None
    serving_bundle: bytes | None = None
    """ca.crt of the TLS Secret; None while that Secret does not exist."""
    webhook_bundles: tuple[bytes, ...] = ()
    """The caBundle of every webhook of every installed configuration."""


@dataclass(frozen=True)
class NewCA:
    reason: str


@dataclass(frozen=True)
class Publish:
    bundle: bytes
    retired: bytes
    reset_mark: bool
    """True when some target did not trust the active CA until now: the propagation clock restarts."""
    reason: str


@dataclass(frozen=True)
class IssueServing:
    reason: str


@dataclass(frozen=True)
class Wait:
    until: dt.datetime
    reason: str


@dataclass(frozen=True)
class Done:
    next_due: dt.datetime


Action = NewCA | Publish | IssueServing | Wait | Done


def active_ca(stored: Stored) -> tuple[CertFacts | None, str]:
    """The stored CA's facts when it can sign, else None and why not."""
    if stored.ca is None:
        return None, "no CA yet"
    try:
        ca = facts(stored.ca.cert_pem)
    except CertificateFormatError as exc:
        return None, f"stored CA is unreadable ({exc})"
    if not ca.is_ca:
        return None, "stored CA certificate is not a CA"
    if not pair_matches(stored.ca):
        return None, "stored CA key does not belong to its certificate"
    return ca, ""


def desired_bundle(active: CertFacts, *, retired: bytes, now: dt.datetime) -> tuple[bytes, bytes]:
    """(bundle to publish, retired CAs to keep): unexpired retired CAs, oldest first, then the active one."""
    kept = sorted(
        (c for c in bundle_facts(retired) if c.is_ca and not c.expired_at(now)),
        key=lambda c: (c.not_before, c.fingerprint),
    )
    kept = [c for c in kept if c.fingerprint != active.fingerprint]
    return join_bundle([*kept, active]), join_bundle(kept)


def _published(stored: Stored) -> tuple[CertFacts, ...]:
    blobs = [*stored.webhook_bundles, stored.serving_bundle or b""]
    return tuple(c for blob in blobs for c in bundle_facts(blob))


def retire(stored: Stored, *, now: dt.datetime) -> bytes:
    """The retired bundle once the active CA is replaced: the old retired CAs, the old active CA, and
    the CA that signed the serving certificate if some published bundle holds it (a lost CA Secret)."""
    candidates = list(bundle_facts(stored.retired))
    if stored.ca is not None:
        candidates.extend(bundle_facts(stored.ca.cert_pem))
    if stored.serving is not None:
        issuer = issuer_in(stored.serving.cert_pem, among=_published(stored))
        if issuer is not None:
            candidates.append(issuer)
    keep = sorted(
        (c for c in candidates if c.is_ca and not c.expired_at(now)),
        key=lambda c: (c.not_before, c.fingerprint),
    )
    return join_bundle(keep)


def _serving(stored: Stored) -> tuple[CertFacts | None, str]:
    if stored.serving is None:
        return None, "no serving certificate yet"
    try:
        cert = facts(stored.serving.cert_pem)
    except CertificateFormatError as exc:
        return None, f"serving certificate is unreadable ({exc})"
    if not pair_matches(stored.serving):
        return None, "serving key does not belong to its certificate"
    return cert, ""


def serving_reason(
    stored: Stored, *, active: CertFacts, now: dt.datetime, policy: Policy, names: ServingNames
) -> str:
    """Why the serving certificate must be (re)issued from the active CA; empty when it need not."""
    cert, broken = _serving(stored)
    if cert is None:
        return broken
    if cert.expired_at(now):
        return f"serving certificate expired at {cert.not_after.isoformat()}"
    missing = names.missing_from(cert)
    if missing:
        return f"serving certificate lacks {', '.join(missing)}"
    if not signed_by(cert.pem, ca_pem=active.pem):
        return "serving certificate was signed by an older CA"
    due = policy.serving_renewal_due(cert)
    if now >= due:
        return f"serving certificate renewal was due at {due.isoformat()}"
    return ""


def _still_works(stored: Stored, *, now: dt.datetime) -> bool:
    """True when the current serving certificate is valid and every published bundle trusts it."""
    cert, _ = _serving(stored)
    if cert is None or not cert.valid_at(now):
        return False
    blobs = [*stored.webhook_bundles] or [stored.serving_bundle or b""]
    return all(issuer_in(cert.pem, among=bundle_facts(blob)) is not None for blob in blobs)


def next_action(stored: Stored, *, now: dt.datetime, policy: Policy, names: ServingNames) -> Action:
    """The one next step; re-plan after carrying it out."""
    active, why = active_ca(stored)
    if active is None:
        return NewCA(why)
    ca_due = policy.ca_renewal_due(active)
    if now >= ca_due:
        return NewCA(f"CA renewal was due at {ca_due.isoformat()} (expires {active.not_after.isoformat()})")
    bundle, retired = desired_bundle(active, retired=stored.retired, now=now)
    targets = [*stored.webhook_bundles]
    if stored.serving_bundle is not None:
        targets.append(stored.serving_bundle)
    untrusting = [t for t in targets if active.fingerprint not in {c.fingerprint for c in bundle_facts(t)}]
    marked = stored.mark is not None and stored.mark.fingerprint == active.fingerprint
    if any(t != bundle for t in targets) or retired != stored.retired or not marked:
        reason = "publishing the CA bundle" if targets else "recording the CA bundle"
        return Publish(bundle, retired, reset_mark=bool(untrusting) or not marked, reason=reason)
    assert stored.mark is not None  # marked
    reason = serving_reason(stored, active=active, now=now, policy=policy, names=names)
    if reason:
        cert, _ = _serving(stored)
        same_ca = cert is not None and signed_by(cert.pem, ca_pem=active.pem)
        ready = stored.mark.at + policy.propagation
        if same_ca or now >= ready or not _still_works(stored, now=now):
            return IssueServing(reason)
        return Wait(ready, f"{reason}; the new CA is trusted everywhere only from {ready.isoformat()}")
    return Done(_next_due(stored, active, policy=policy, now=now))


def _next_due(stored: Stored, active: CertFacts, *, policy: Policy, now: dt.datetime) -> dt.datetime:
    times = [policy.ca_renewal_due(active)]
    cert, _ = _serving(stored)
    if cert is not None:
        times.append(policy.serving_renewal_due(cert))
    times.extend(c.not_after for c in bundle_facts(stored.retired) if not c.expired_at(now))
    return min(times)
