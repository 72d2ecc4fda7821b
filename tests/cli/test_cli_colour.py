"""Colours of ``driftwarden app`` output: on a terminal only, never with NO_COLOR, never shifting a table."""

from __future__ import annotations

import re

from cli import appview, colour

ANSI = re.compile(r"\033\[[0-9;]*m")


def test_colour_only_on_a_terminal_without_no_color() -> None:
    assert colour.enabled(tty=True, env={})
    assert colour.enabled(tty=True, env={"NO_COLOR": ""})  # no-color.org: set *and* not empty
    assert not colour.enabled(tty=True, env={"NO_COLOR": "1"})
    assert not colour.enabled(tty=False, env={})


def test_statuses_are_coloured_without_moving_a_column() -> None:
    text = appview.table(
        ["NAME", "SYNC", "HEALTH"], [["web", "Synced", "Healthy"], ["api", "OutOfSync", "Degraded"]]
    )
    painted = colour.statuses(text)
    assert ANSI.sub("", painted) == text
    assert (
        f"{colour.GREEN}Synced{colour.RESET}" in painted and f"{colour.RED}Degraded{colour.RESET}" in painted
    )
    assert f"{colour.YELLOW}OutOfSync{colour.RESET}" in painted
    assert "web" in painted and f"{colour.GREEN}web" not in painted  # names stay plain
    assert colour.statuses("Synced-ish SyncedX") == "Synced-ish SyncedX"  # whole words only


def test_a_diff_is_coloured_line_by_line() -> None:
    text = "===== v1/ConfigMap ns/web (update) =====\n--- live\n+++ git\n@@ -1 +1 @@\n-a: 1\n+a: 2\n b: 3\n"
    painted = colour.diff(text)
    assert ANSI.sub("", painted) == text
    lines = painted.splitlines()
    assert lines[4] == f"{colour.RED}-a: 1{colour.RESET}" and lines[5] == f"{colour.GREEN}+a: 2{colour.RESET}"
    assert lines[3].startswith(colour.CYAN) and lines[1].startswith(colour.BOLD) and lines[6] == " b: 3"
