"""Certificates for the certs tests, made at a chosen time, and a pure executor of the plan's steps.

``execute`` does what ``certs.rotate`` does for each action, on a ``Stored`` value instead of the cluster,
so properties can drive the plan through years of simulated time in milliseconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from certs.pki import KeyPair, issue, new_ca
from certs.plan import (
    Action,
    IssueServing,
    NewCA,
    Publish,
    PublishMark,
    Stored,
    active_ca,
    desired_bundle,
    retire,
)
from certs.policy import Policy, ServingNames

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
NAMES = ServingNames("driftwarden-webhook", "driftwarden-system", ip_addresses=("127.0.0.1",))
HOOKS = 3  # driftwarden-guard has one webhook, driftwarden-flag two


def ca_at(now: dt.datetime, validity: dt.timedelta = 3650 * DAY, name: str = "test-ca") -> KeyPair:
    return new_ca(name, now=now, validity=validity)


def serving_at(
    ca: KeyPair, now: dt.datetime, validity: dt.timedelta = 365 * DAY, names: ServingNames = NAMES
) -> KeyPair:
    return issue(names.request(validity=validity), ca=ca, now=now)


def execute(
    stored: Stored, action: Action, *, now: dt.datetime, policy: Policy, names: ServingNames
) -> Stored:
    """The effect of one step, as ``certs.rotate`` carries it out against the cluster."""
    if isinstance(action, NewCA):
        ca = new_ca("test-ca", now=now, validity=policy.ca_validity)
        return replace(stored, ca=ca, retired=retire(stored, now=now), mark=None)
    active, _ = active_ca(stored)
    assert stored.ca is not None and active is not None
    if isinstance(action, Publish):
        mark = PublishMark(active.fingerprint, now) if action.reset_mark else stored.mark
        return replace(
            stored,
            retired=action.retired,
            mark=mark,
            webhook_bundles=tuple(action.bundle for _ in stored.webhook_bundles),
            serving_bundle=action.bundle if stored.serving is not None else stored.serving_bundle,
        )
    assert isinstance(action, IssueServing)
    bundle, _ = desired_bundle(active, retired=stored.retired, now=now)
    serving = issue(names.request(validity=policy.serving_validity), ca=stored.ca, now=now)
    return replace(stored, serving=serving, serving_bundle=bundle)
