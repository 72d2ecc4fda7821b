"""A server on an event loop of the test's choosing (uvloop or asyncio's), in its own thread.

The tests that must hold on both loops (the connection guard's) run their server here, on a loop made by
``driftwarden.eventloop``'s factory, while the test and its misbehaving clients stay on pytest-asyncio's
loop: as in production, where the API server is the client and only the server's loop is ours to choose.
tests/webhook/conftest.py's ``loop_name`` fixture parametrizes a test with each loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from driftwarden.eventloop import loop_factory

T = TypeVar("T")


@contextlib.contextmanager
def served_on(loop: str, open_server: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[T]:
    """Enter ``open_server()`` on a new ``loop`` in a thread; yield what it gives; exit it there after."""
    entered: concurrent.futures.Future[tuple[T, asyncio.AbstractEventLoop, asyncio.Event]]
    entered = concurrent.futures.Future()

    async def serve() -> None:
        stop = asyncio.Event()
        async with open_server() as value:
            entered.set_result((value, asyncio.get_running_loop(), stop))
            await stop.wait()

    def thread() -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
                runner.run(serve())
        except BaseException as exc:
            if not entered.done():
                entered.set_exception(exc)
            raise

    worker = threading.Thread(target=thread, name=f"server-on-{loop}", daemon=True)
    worker.start()
    value, running, stop = entered.result(timeout=60)
    try:
        yield value
    finally:
        running.call_soon_threadsafe(stop.set)
        worker.join(60)
        assert not worker.is_alive(), f"the server on {loop} did not stop"
