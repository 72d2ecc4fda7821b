"""Polling the real cluster until a condition holds, within a bound (never a bare sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]], *, seconds: float = 30, every: float = 0.05
) -> None:
    """Await ``check()`` until it is true; TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 - the condition lives in the API server, not in an Event
            await asyncio.sleep(every)
