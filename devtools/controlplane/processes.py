"""Child processes of the control plane: start with output to a log file, stop without leaving orphans.

Only process plumbing lives here (no knowledge of etcd or kube-apiserver flags). Children get
PR_SET_PDEATHSIG so they die with us even if we are killed without a chance to clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from driftwarden.errors import ControlPlaneError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. Linux-only, which is the only platform we run on.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ManagedProcess:
    """One long-running child with its log file; ``stop`` is safe to call twice."""

    name: str
    argv: Sequence[str]
    log_file: Path
    env: Mapping[str, str] | None = None
    """The child's whole environment; None inherits ours."""
    process: asyncio.subprocess.Process | None = field(default=None, init=False)

    async def start(self) -> None:
        with self.log_file.open("ab") as log:
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    env=None if self.env is None else dict(self.env),
                    stdout=log,
                    stderr=log,
                    # A new session: Ctrl-C in a terminal reaches us, and we stop children in order.
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise ControlPlaneError(f"cannot start {self.name} ({self.argv[0]}): {exc}") from exc

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the log, for error messages when the process fails to come up."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps the child."""
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
