"""Which event loop a process runs on: uvloop (the default) or asyncio's own, chosen once at its entry point.

The CLI resolves the name (``--event-loop``, else ``$DRIFTWARDEN_EVENT_LOOP``: driftwarden.settings) and
runs the process's main coroutine with ``run``; nothing else creates a loop, sets a policy or imports
uvloop, so every other module works on whichever loop is running. uvloop does the I/O for less CPU (a
bare aiohttp handler 6-16 % less; for the webhook the difference was within the measuring machine's
noise: docs/benchmarks.md); asyncio's loop stays one flag away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

FACTORIES: dict[str, LoopFactory] = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}
"""The loops by the names of ``driftwarden.settings.EVENT_LOOPS``."""


def loop_factory(name: str) -> LoopFactory:
    """The function that makes a new loop of kind ``name`` (``uvloop`` or ``asyncio``)."""
    return FACTORIES[name]


def run(main: Coroutine[Any, Any, T], *, loop: str) -> T:
    """``asyncio.run(main)`` on a new loop of kind ``loop``, closed (with its async generators) after."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
