"""Colours for what ``driftwarden app`` prints to a person: statuses in tables, the lines of a diff.

Pure: text in, text out. The caller asks ``enabled`` first: colours only when standard output is a terminal
and ``NO_COLOR`` is unset or empty (https://no-color.org), so pipes, files, ``-o json|yaml`` and tests get
plain text. Codes are added after a table is laid out (they take no columns on a terminal), so they never
shift it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

RESET = "\033[0m"
GREEN, YELLOW, RED, CYAN, BOLD = "\033[32m", "\033[33m", "\033[31m", "\033[36m", "\033[1m"

STATUS_COLOURS = {
    **dict.fromkeys(("Synced", "Healthy", "Pruned", "Succeeded"), GREEN),
    **dict.fromkeys(("OutOfSync", "Progressing", "Suspended", "Missing", "PruneSkipped", "Running"), YELLOW),
    **dict.fromkeys(("Degraded", "SyncFailed", "Failed", "Unknown"), RED),
}
_STATUS = re.compile(r"(?<![\w-])(" + "|".join(sorted(STATUS_COLOURS, key=len, reverse=True)) + r")(?![\w-])")


def enabled(*, tty: bool, env: Mapping[str, str]) -> bool:
    """Colour only a terminal, and never when ``NO_COLOR`` is set to anything."""
    return tty and not env.get("NO_COLOR")


def statuses(text: str) -> str:
    """Every sync, health or result status word in ``text`` coloured: green good, yellow pending, red bad."""
    return _STATUS.sub(lambda m: f"{STATUS_COLOURS[m[1]]}{m[1]}{RESET}", text)


def _diff_line(line: str) -> str:
    if line.startswith(("+++", "---", "=====")):
        return f"{BOLD}{line}{RESET}"
    colour = {"+": GREEN, "-": RED, "@": CYAN}.get(line[:1])
    return f"{colour}{line}{RESET}" if colour and line else line


def diff(text: str) -> str:
    """A unified diff with added lines green, removed lines red, hunk headers cyan, file headers bold."""
    return "".join(
        _diff_line(line.rstrip("\n")) + line[len(line.rstrip("\n")) :] for line in text.splitlines(True)
    )
