"""The leader-election decision (pure): acquire, renew, wait, step down; the Lease round trip; settings."""

from __future__ import annotations

import datetime as dt

import pytest

from auditor.leadership.lease import (
    ElectionSettings,
    LeaseRecord,
    decide,
    lease_object,
    lease_spec,
    micro_time,
    parse_lease,
    released,
)
from driftwarden.errors import ConfigError

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def held_by(holder: str, *, renewed: float = 0, duration: int = 15, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, duration, at(-100), at(renewed), transitions)


def test_no_lease_is_acquired_with_both_times_now_and_no_transitions() -> None:
    decision = decide(None, identity="a", now=T0, lease_duration=15, leading=False)
    assert decision.action == "acquire"
    assert decision.record == LeaseRecord("a", 15, T0, T0, 0)


def test_a_live_lease_of_another_makes_a_standby_wait_and_a_leader_step_down() -> None:
    current = held_by("b", renewed=0, duration=15)
    for now in (at(0), at(10), at(15)):  # renewTime + duration == now is not yet expired
        assert decide(current, identity="a", now=now, lease_duration=15, leading=False).action == "wait"
        assert decide(current, identity="a", now=now, lease_duration=15, leading=True).action == "step_down"
    assert decide(current, identity="a", now=at(15), lease_duration=15, leading=False).record == current


@pytest.mark.parametrize("leading", [False, True])
def test_an_expired_lease_is_taken_over_and_counts_a_transition(leading: bool) -> None:
    current = held_by("b", renewed=0, duration=15, transitions=3)
    decision = decide(current, identity="a", now=at(15.001), lease_duration=15, leading=leading)
    assert decision.action == "acquire"
    assert decision.record == LeaseRecord("a", 15, at(15.001), at(15.001), 4)


def test_the_expiry_uses_the_duration_in_the_lease_not_ours() -> None:
    current = held_by("b", renewed=0, duration=60)
    assert decide(current, identity="a", now=at(30), lease_duration=15, leading=False).action == "wait"


def test_the_holder_renews_keeping_its_acquire_time_and_transitions() -> None:
    current = held_by("a", renewed=0, duration=15, transitions=7)
    decision = decide(current, identity="a", now=at(2), lease_duration=15, leading=True)
    assert decision.action == "renew"
    assert decision.record == LeaseRecord("a", 15, at(-100), at(2), 7)
    # Even when it expired meanwhile (a long pause), a holder renews what is still its own lease.
    assert decide(current, identity="a", now=at(99), lease_duration=15, leading=True).action == "renew"


def test_a_released_lease_is_acquired_at_once() -> None:
    gone = released(held_by("b", renewed=0, transitions=5), now=at(1))
    assert gone == LeaseRecord("", 1, at(1), at(1), 5)
    decision = decide(gone, identity="a", now=at(1), lease_duration=15, leading=False)
    assert decision.action == "acquire"
    assert decision.record.holder == "a" and decision.record.transitions == 6


def test_a_lease_without_renew_time_or_holder_is_free() -> None:
    for record in (LeaseRecord("b", 15, None, None, 0), LeaseRecord("", 15, T0, T0, 0)):
        assert decide(record, identity="a", now=T0, lease_duration=15, leading=False).action == "acquire"


def test_lease_round_trip_through_the_api_shape() -> None:
    record = LeaseRecord("replica-1", 15, at(-3), at(0), 2)
    obj = lease_object(record, namespace="ns", name="driftwarden-auditor")
    assert obj["apiVersion"] == "coordination.k8s.io/v1" and obj["kind"] == "Lease"
    assert obj["spec"] == {
        "holderIdentity": "replica-1",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 2,
        "acquireTime": "2026-01-02T03:04:02.678901Z",
        "renewTime": "2026-01-02T03:04:05.678901Z",
    }
    assert parse_lease(obj) == record
    assert parse_lease(None) is None
    assert parse_lease({"metadata": {}}) == LeaseRecord()
    assert parse_lease({"spec": {"leaseDurationSeconds": True, "renewTime": "not a time"}}) == LeaseRecord()
    assert lease_spec(LeaseRecord("x", 5)) == {
        "holderIdentity": "x",
        "leaseDurationSeconds": 5,
        "leaseTransitions": 0,
    }


def test_micro_time_is_utc_with_microseconds_and_refuses_naive_times() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert micro_time(dt.datetime(2026, 1, 1, 2, 0, tzinfo=plus_two)) == "2026-01-01T00:00:00.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        micro_time(dt.datetime(2026, 1, 1))  # a naive datetime


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identity": ""}, "identity"),
        ({"namespace": ""}, "namespace"),
        ({"retry_period": 0}, "retry period"),
        ({"renew_deadline": 2.4, "retry_period": 2}, "renew deadline"),
        ({"lease_duration": 10, "renew_deadline": 10}, "lease duration"),
    ],
)
def test_settings_are_checked_like_client_go(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"identity": "a", "namespace": "ns"}
    with pytest.raises(ConfigError, match=message):
        ElectionSettings(**{**base, **kwargs})  # type: ignore[arg-type]
    defaults = ElectionSettings("a", "ns")
    assert (defaults.name, defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (
        "driftwarden-auditor", 15, 10.0, 2.0,
    )  # fmt: skip
