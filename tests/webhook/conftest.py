"""Fixtures of the webhook's tests: decision settings for the pure core, the event loop for the servers."""

from __future__ import annotations

import pytest

from driftwarden.settings import EVENT_LOOPS
from webhook.admission.settings import DecisionSettings, make_settings

BREAKGLASS_USER = "oncall-olga"
BREAKGLASS_GROUP = "sre-breakglass"


@pytest.fixture
def settings() -> DecisionSettings:
    """The driftwarden profile, enforce by default, with one break-glass user and group."""
    return make_settings(breakglass_users=[BREAKGLASS_USER], breakglass_groups=[BREAKGLASS_GROUP])


@pytest.fixture(scope="module", params=EVENT_LOOPS)
def loop_name(request: pytest.FixtureRequest) -> str:
    """Each event loop a server process can run on, by name (``uvloop``, ``asyncio``)."""
    name: str = request.param
    return name
