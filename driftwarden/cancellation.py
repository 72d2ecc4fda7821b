"""Stop a loop whose cancellation something swallowed.

Python 3.11's ``asyncio.wait_for`` (used here and inside libraries) can lose a cancellation that arrives
just as its inner future finishes: it returns the result, and the task carries on as if never asked to
stop. A background loop that then goes on retrying never ends, and whoever awaits it after ``cancel()``
(a shutdown, a test's teardown) waits forever. ``Task.cancelling()`` still counts the request, so a loop
that calls ``stop_if_cancelled()`` after each step ends as it was asked to.

Kernel, no I/O: it only looks at the current task.
"""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """Raise CancelledError when the current task was asked to stop (even if the request was swallowed)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
