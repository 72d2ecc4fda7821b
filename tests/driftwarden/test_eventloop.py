"""The event loop a process runs on: ``--event-loop``, else ``$DRIFTWARDEN_EVENT_LOOP``, else uvloop; the
entry points of ``webhook serve`` and ``auditor run`` take the flag, and ``driftwarden.eventloop.run`` runs
a coroutine on the loop it names."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from cli.main import build_parser
from driftwarden import eventloop
from driftwarden.errors import ConfigError
from driftwarden.settings import EVENT_LOOPS, event_loop


def test_uvloop_is_the_default_and_the_flag_outranks_the_environment() -> None:
    assert event_loop({}) == "uvloop"
    assert event_loop({"DRIFTWARDEN_EVENT_LOOP": "asyncio"}) == "asyncio"
    assert event_loop({"DRIFTWARDEN_EVENT_LOOP": "asyncio"}, explicit="uvloop") == "uvloop"
    assert event_loop({"DRIFTWARDEN_EVENT_LOOP": ""}) == "uvloop"


def test_an_unknown_loop_in_the_environment_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown event loop 'trio' \(\$DRIFTWARDEN_EVENT_LOOP\).*uvloop, asyncio"
    ):
        event_loop({"DRIFTWARDEN_EVENT_LOOP": "trio"})


def test_every_named_loop_has_a_factory() -> None:
    assert tuple(eventloop.FACTORIES) == EVENT_LOOPS


@pytest.mark.parametrize(("name", "kind"), [("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)])
def test_run_runs_the_coroutine_on_the_named_loop(name: str, kind: type) -> None:
    async def which() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    loop = eventloop.run(which(), loop=name)
    assert isinstance(loop, kind)
    assert loop.is_closed()
    if name == "asyncio":
        assert not isinstance(loop, uvloop.Loop)


@pytest.mark.parametrize(
    "argv",
    [
        ["webhook", "serve", "--tls-cert-file", "c", "--tls-key-file", "k"],
        ["auditor", "run"],
    ],
)
def test_the_serving_commands_take_the_flag(argv: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(argv).event_loop is None  # resolved from the environment at start
    assert parser.parse_args([*argv, "--event-loop", "asyncio"]).event_loop == "asyncio"
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--event-loop", "tokio"])
