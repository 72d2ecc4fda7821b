"""driftwarden.cancellation: a loop stops when asked, even if a step swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from driftwarden.cancellation import stop_if_cancelled


async def _swallowing_step() -> None:
    """What 3.11's wait_for does when its inner future finishes as the cancel arrives: carry on."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0.05)


async def _loop(*, checked: bool, steps: list[int]) -> None:
    for _ in range(3):
        await _swallowing_step()
        steps.append(1)
        if checked:
            stop_if_cancelled()


async def test_a_loop_that_checks_stops_though_its_step_swallowed_the_cancel() -> None:
    steps: list[int] = []
    task = asyncio.create_task(_loop(checked=True, steps=steps))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert task.cancelled() and steps == [1]


async def test_without_the_check_the_loop_goes_on() -> None:
    """The hazard itself: asked to stop during its first step, the loop runs all three."""
    steps: list[int] = []
    task = asyncio.create_task(_loop(checked=False, steps=steps))
    await asyncio.sleep(0.01)
    task.cancel()
    async with asyncio.timeout(5):
        await task
    assert not task.cancelled() and steps == [1, 1, 1]


async def test_nothing_happens_when_not_cancelled() -> None:
    stop_if_cancelled()  # no exception outside a cancelled task
