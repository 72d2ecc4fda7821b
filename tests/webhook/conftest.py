"""Fixtures of the webhook's pure-core tests."""

from __future__ import annotations

import pytest

from webhook.admission.settings import DecisionSettings, make_settings

BREAKGLASS_USER = "oncall-olga"
BREAKGLASS_GROUP = "sre-breakglass"


@pytest.fixture
def settings() -> DecisionSettings:
    """The driftwarden profile, enforce by default, with one break-glass user and group."""
    return make_settings(breakglass_users=[BREAKGLASS_USER], breakglass_groups=[BREAKGLASS_GROUP])
