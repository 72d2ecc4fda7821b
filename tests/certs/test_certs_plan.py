"""The renewal plan, case by case: bootstrap, publish, renew, switch CAs only after propagation, prune."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from certs.facts import bundle_facts, facts, join_bundle
from certs.pki import KeyPair
from certs.plan import (
    Done,
    IssueServing,
    NewCA,
    Publish,
    PublishMark,
    Stored,
    Wait,
    desired_bundle,
    next_action,
    retire,
)
from certs.policy import Policy, ServingNames
from driftwarden.errors import ConfigError
from tests.certs.material import DAY, HOOKS, NAMES, T0, ca_at, serving_at

POLICY = Policy()


def plan(stored: Stored, now: dt.datetime, names: ServingNames = NAMES) -> object:
    return next_action(stored, now=now, policy=POLICY, names=names)


def settled(ca: KeyPair, serving: KeyPair, *, at: dt.datetime = T0) -> Stored:
    """A CA and a serving certificate from it, published everywhere since ``at``."""
    bundle = ca.cert_pem
    return Stored(
        ca=ca,
        mark=PublishMark(facts(ca.cert_pem).fingerprint, at),
        serving=serving,
        serving_bundle=bundle,
        webhook_bundles=(bundle,) * HOOKS,
    )


def test_an_empty_cluster_starts_with_a_ca() -> None:
    assert plan(Stored(), T0) == NewCA("no CA yet")


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        (lambda ca, leaf: KeyPair(b"garbage", ca.key_pem), "unreadable"),
        (lambda ca, leaf: KeyPair(ca.cert_pem, leaf.key_pem), "does not belong"),
        (lambda ca, leaf: leaf, "not a CA"),
    ],
)
def test_a_broken_ca_is_replaced(broken: object, why: str) -> None:
    ca = ca_at(T0)
    action = plan(Stored(ca=broken(ca, serving_at(ca, T0))), T0)  # type: ignore[operator]
    assert isinstance(action, NewCA) and why in action.reason


def test_a_new_ca_is_published_and_recorded_before_anything_is_signed() -> None:
    ca = ca_at(T0)
    action = plan(Stored(ca=ca, webhook_bundles=(b"",) * HOOKS), T0)
    assert action == Publish(ca.cert_pem, b"", reset_mark=True, reason="publishing the CA bundle")
    marked = Stored(ca=ca, mark=PublishMark(facts(ca.cert_pem).fingerprint, T0))
    assert plan(marked, T0) == IssueServing("no serving certificate yet")  # nothing served yet: no wait


def test_everything_current_is_done_until_the_first_renewal() -> None:
    ca = ca_at(T0)
    serving = serving_at(ca, T0)
    action = plan(settled(ca, serving), T0 + DAY)
    assert isinstance(action, Done)
    assert action.next_due == POLICY.serving_renewal_due(facts(serving.cert_pem))
    # 2/3 of (1 year + 5 minutes of backdating) after issue: about 122 days ahead of expiry.
    assert (
        dt.timedelta(days=121) < facts(serving.cert_pem).not_after - action.next_due < dt.timedelta(days=123)
    )


def test_the_serving_certificate_is_renewed_at_two_thirds_of_its_life_without_waiting() -> None:
    ca = ca_at(T0)
    serving = serving_at(ca, T0)
    due = POLICY.serving_renewal_due(facts(serving.cert_pem))
    assert isinstance(plan(settled(ca, serving), due - dt.timedelta(seconds=1)), Done)
    action = plan(settled(ca, serving, at=due), due)  # published just now: the same CA needs no wait
    assert isinstance(action, IssueServing) and "renewal was due" in action.reason


def test_a_serving_certificate_without_a_requested_name_is_reissued() -> None:
    ca = ca_at(T0)
    stored = settled(ca, serving_at(ca, T0))
    wider = ServingNames(NAMES.service, NAMES.namespace, ip_addresses=("127.0.0.1", "10.0.0.7"))
    action = plan(stored, T0 + DAY, names=wider)
    assert isinstance(action, IssueServing) and "10.0.0.7" in action.reason


def test_a_due_ca_is_replaced_and_a_ca_that_cannot_outlive_a_new_certificate_is_due() -> None:
    ca = ca_at(T0)
    stored = settled(ca, serving_at(ca, T0))
    due = POLICY.ca_renewal_due(facts(ca.cert_pem))
    assert isinstance(plan(stored, due - DAY), IssueServing | Done)
    assert isinstance(plan(stored, due), NewCA)
    short = ca_at(T0, validity=400 * DAY)
    assert POLICY.ca_renewal_due(facts(short.cert_pem)) == facts(short.cert_pem).not_after - 365 * DAY


def test_after_a_new_ca_the_old_one_stays_trusted_and_the_switch_waits_for_propagation() -> None:
    old = ca_at(T0)
    now = POLICY.ca_renewal_due(facts(old.cert_pem))
    serving = serving_at(old, now - 10 * DAY)  # renewed on time, still valid for months
    new = ca_at(now, name="next-ca")
    rotated = replace(
        settled(old, serving), ca=new, retired=retire(settled(old, serving), now=now), mark=None
    )
    action = plan(rotated, now)
    assert isinstance(action, Publish) and action.reset_mark
    assert [c.pem for c in bundle_facts(action.bundle)] == [old.cert_pem, new.cert_pem]
    published = replace(
        rotated,
        retired=action.retired,
        mark=PublishMark(facts(new.cert_pem).fingerprint, now),
        webhook_bundles=(action.bundle,) * HOOKS,
        serving_bundle=action.bundle,
    )
    waiting = plan(published, now + dt.timedelta(minutes=1))
    assert waiting == Wait(now + POLICY.propagation, waiting.reason)  # type: ignore[union-attr]
    assert "older CA" in waiting.reason  # type: ignore[union-attr]
    assert isinstance(plan(published, now + POLICY.propagation), IssueServing)


def test_a_serving_certificate_that_no_longer_works_is_replaced_without_waiting() -> None:
    old = ca_at(T0)
    serving = serving_at(old, T0, validity=DAY)
    new = ca_at(T0 + 2 * DAY, name="next-ca")
    bundle = join_bundle([facts(old.cert_pem), facts(new.cert_pem)])
    stored = Stored(
        ca=new,
        retired=old.cert_pem,
        mark=PublishMark(facts(new.cert_pem).fingerprint, T0 + 2 * DAY),
        serving=serving,
        serving_bundle=bundle,
        webhook_bundles=(bundle,) * HOOKS,
    )
    action = plan(stored, T0 + 2 * DAY)  # expired a day ago: nothing to protect by waiting
    assert isinstance(action, IssueServing) and "expired" in action.reason


def test_a_reset_cabundle_is_republished_and_restarts_the_propagation_clock() -> None:
    ca = ca_at(T0)
    stored = replace(settled(ca, serving_at(ca, T0)), webhook_bundles=(b"",) + (ca.cert_pem,) * (HOOKS - 1))
    action = plan(stored, T0 + DAY)
    assert isinstance(action, Publish) and action.reset_mark and action.bundle == ca.cert_pem


def test_expired_retired_cas_are_pruned_oldest_first_without_duplicates() -> None:
    oldest = ca_at(T0, validity=10 * DAY, name="oldest")
    older = ca_at(T0 + DAY, validity=400 * DAY, name="older")
    active = ca_at(T0 + 2 * DAY, validity=3650 * DAY, name="active")
    retired = older.cert_pem + oldest.cert_pem + older.cert_pem + active.cert_pem + b"not a certificate"
    bundle, kept = desired_bundle(facts(active.cert_pem), retired=retired, now=T0 + 20 * DAY)
    assert kept == older.cert_pem
    assert bundle == older.cert_pem + active.cert_pem
    stored = replace(settled(active, serving_at(active, T0 + 2 * DAY)), retired=retired)
    action = plan(stored, T0 + 20 * DAY)
    # Only pruning: every target already trusts the active CA, so the propagation clock keeps running.
    assert isinstance(action, Publish) and not action.reset_mark and action.retired == older.cert_pem


def test_a_lost_ca_secret_keeps_the_ca_that_signed_what_is_served() -> None:
    old = ca_at(T0)
    stored = replace(settled(old, serving_at(old, T0)), ca=None, mark=None)
    assert plan(stored, T0 + DAY) == NewCA("no CA yet")
    assert retire(stored, now=T0 + DAY) == old.cert_pem


def test_publish_marks_round_trip_and_garbage_is_no_mark() -> None:
    mark = PublishMark("ab" * 32, T0)
    assert PublishMark.decode(mark.encode()) == mark
    assert PublishMark.decode("ab@2026-01-01T00:00:00") == PublishMark("ab", T0)  # naive means UTC
    for garbage in (None, "", "no-at-sign", "@2026-01-01T00:00:00+00:00", "ab@yesterday"):
        assert PublishMark.decode(garbage) is None


def test_serving_names_are_the_services_dns_names_and_valid_ips() -> None:
    assert NAMES.dns_names == (
        "driftwarden-webhook",
        "driftwarden-webhook.driftwarden-system",
        "driftwarden-webhook.driftwarden-system.svc",
        "driftwarden-webhook.driftwarden-system.svc.cluster.local",
    )
    request = NAMES.request(validity=DAY)
    assert request.server and not request.client and request.ip_addresses == ("127.0.0.1",)
    with pytest.raises(ConfigError):
        ServingNames("svc", "ns", ip_addresses=("not-an-ip",))
    with pytest.raises(ConfigError):
        ServingNames("", "ns")


@pytest.mark.parametrize(
    "bad",
    [
        {"renew_fraction": 0.0},
        {"renew_fraction": 1.5},
        {"serving_renew_before": 365 * DAY},
        {"ca_renew_before": 3650 * DAY},
        {"serving_validity": 3650 * DAY},
        {"propagation": -DAY},
    ],
)
def test_a_policy_that_would_renew_forever_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Policy(**bad)  # type: ignore[arg-type]
