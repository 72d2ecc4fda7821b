"""Properties of the renewal decisions, over random lifetimes and random rotator schedules.

The simulation runs the plan against a pure model of the cluster (``tests.certs.material.execute``) for
many certificate lifetimes, with runs at random intervals (a CronJob that is sometimes late), sleeping
through short propagation waits or leaving them to a later run, and with the cluster disturbed now and
then (a deleted TLS Secret, a reset caBundle, a lost CA Secret). Whatever happens, no step the rotator
takes turns a working setup into a broken one, and every finished run leaves a current, trusted setup.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from certs.facts import CertFacts, bundle_facts, facts, issuer_in
from certs.plan import Done, IssueServing, NewCA, Stored, Wait, next_action
from certs.policy import Policy, renew_at
from tests.certs.material import HOOKS, HOUR, NAMES, T0, ca_at, execute

hours = st.floats(min_value=0.0, max_value=1.0)


@given(
    life_hours=st.integers(min_value=1, max_value=24 * 365 * 20),
    fraction=st.floats(min_value=0.05, max_value=1.0),
    before_share=st.floats(min_value=0.0, max_value=0.99),
)
def test_renewal_is_the_earlier_of_the_fraction_and_the_margin(
    life_hours: int, fraction: float, before_share: float
) -> None:
    life = dt.timedelta(hours=life_hours)
    cert = CertFacts(b"", "f", "s", "i", T0, T0 + life, is_ca=False)
    before = life * before_share
    at = renew_at(cert, fraction=fraction, before=before)
    assert at <= cert.not_after - before
    assert at <= cert.not_before + life * fraction
    assert at in (cert.not_after - before, cert.not_before + life * fraction)
    assert cert.not_before < at <= cert.not_after


POLICY = Policy(
    ca_validity=200 * HOUR,
    ca_renew_before=40 * HOUR,
    serving_validity=50 * HOUR,
    serving_renew_before=10 * HOUR,
    propagation=1 * HOUR,
)
MAX_GAP_HOURS = 8.0  # less than every renewal margin: a run always comes before anything expires


def works(stored: Stored, now: dt.datetime) -> bool:
    """The served certificate is valid, carries the names, and every published caBundle trusts it."""
    if stored.serving is None:
        return False
    cert = facts(stored.serving.cert_pem)
    if not cert.valid_at(now) or NAMES.missing_from(cert):
        return False
    return all(issuer_in(cert.pem, among=bundle_facts(b)) is not None for b in stored.webhook_bundles)


disturbances = st.sampled_from(["none"] * 12 + ["delete-tls", "reset-cabundle", "lose-ca"])


def disturb(stored: Stored, what: str) -> Stored:
    if what == "delete-tls":
        return replace(stored, serving=None, serving_bundle=None)
    if what == "reset-cabundle":
        return replace(stored, webhook_bundles=(b"",) * HOOKS)
    if what == "lose-ca":
        return replace(stored, ca=None, retired=b"", mark=None)
    return stored


def run(stored: Stored, now: dt.datetime, *, max_wait: dt.timedelta) -> tuple[Stored, dt.datetime, object]:
    """One rotator run from ``now``; checks every step, returns the final state, time and action."""
    for _ in range(12):
        action = next_action(stored, now=now, policy=POLICY, names=NAMES)
        if isinstance(action, Done):
            return stored, now, action
        if isinstance(action, Wait):
            assert action.until > now
            if action.until - now > max_wait:
                return stored, now, action
            now = action.until  # sleeping through the propagation
            continue
        before_works = works(stored, now)
        after = execute(stored, action, now=now, policy=POLICY, names=NAMES)
        if before_works:  # no step ever breaks a working setup
            assert works(after, now), (action, now)
        if isinstance(action, IssueServing) and before_works and stored.mark is not None:
            old = facts(stored.serving.cert_pem)  # type: ignore[union-attr]
            new_issuer = issuer_in(after.serving.cert_pem, among=bundle_facts(after.ca.cert_pem))  # type: ignore[union-attr]
            if issuer_in(old.pem, among=bundle_facts(after.ca.cert_pem)) is None and new_issuer is not None:
                # Switching CAs: only once the new CA has been published everywhere long enough.
                assert now >= stored.mark.at + POLICY.propagation
        stored = after
    raise AssertionError("a run did not settle within 12 steps")


SIMULATED = 1.5 * POLICY.ca_validity  # every certificate, the CA included, is renewed at least once


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Found by Hypothesis: the TLS Secret deleted every ten runs, so the serving certificate is re-issued
# before it is ever old enough to be renewed.
@example(gaps=[1.0] * 10, sleeps=[False] * 10, events=["none"] * 9 + ["delete-tls"])
@given(
    gaps=st.lists(st.floats(min_value=1.0, max_value=MAX_GAP_HOURS), min_size=10, max_size=40),
    sleeps=st.lists(st.booleans(), min_size=10, max_size=40),
    events=st.lists(disturbances, min_size=10, max_size=40),
)
def test_years_of_runs_never_break_trust_and_always_settle(
    gaps: list[float], sleeps: list[bool], events: list[str]
) -> None:
    stored = Stored(webhook_bundles=(b"",) * HOOKS)  # the configurations are installed, with no caBundle yet
    now, cas_seen, switches, step = T0, set(), 0, 0
    while now < T0 + SIMULATED:  # the drawn schedule repeats until the simulated time is over
        gap, sleep, event = gaps[step % len(gaps)], sleeps[step % len(sleeps)], events[step % len(events)]
        step += 1
        stored = disturb(stored, event)
        served_before = stored.serving.cert_pem if stored.serving else None
        stored, now, last = run(stored, now, max_wait=2 * HOUR if sleep else dt.timedelta(0))
        assert isinstance(last, Done | Wait)
        cas = bundle_facts(stored.webhook_bundles[0])
        assert all(not ca.expired_at(now) for ca in cas) and 1 <= len(cas) <= 3
        assert len(set(stored.webhook_bundles)) == 1
        assert works(stored, now) or isinstance(last, Wait)
        if isinstance(last, Done):
            assert works(stored, now) and last.next_due > now
        cas_seen |= {ca.fingerprint for ca in cas}
        # A new serving certificate: a renewal, or a re-issue after a disturbance deleted the Secret (with
        # the TLS Secret deleted every few runs, the certificate never gets old enough to be renewed).
        if stored.serving is not None and stored.serving.cert_pem != served_before:
            switches += 1
        now += dt.timedelta(hours=gap)
        if event == "none" and stored.serving is not None:
            # Runs come more often than the renewal margins, so nothing ever expires between runs.
            assert facts(stored.serving.cert_pem).valid_at(now)
            assert stored.ca is not None and facts(stored.ca.cert_pem).valid_at(now)
    assert switches >= 3 and len(cas_seen) >= 2  # renewals happened, one of them with a new CA


@given(st.integers(min_value=0, max_value=3))
def test_a_run_from_nothing_ends_with_a_working_setup(extra_hooks: int) -> None:
    stored = Stored(webhook_bundles=(b"",) * (1 + extra_hooks))
    stored, now, last = run(stored, T0, max_wait=dt.timedelta(0))
    assert isinstance(last, Done) and works(stored, now)
    assert isinstance(next_action(Stored(), now=T0, policy=POLICY, names=NAMES), NewCA)
    assert ca_at(T0).cert_pem not in stored.webhook_bundles[0]  # a fresh CA every time
