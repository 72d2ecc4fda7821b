"""One way for a long-running command to stop on SIGINT or SIGTERM: an ``asyncio.Event`` that they set.

Used by every serving command (webhook, auditor, certificate rotator, local control plane). The handlers
are installed on the running loop for the block and removed after it, so nothing outlives the command.
It must not do any work on a signal besides setting the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
