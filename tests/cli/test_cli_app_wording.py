"""What ``app get``/``sync`` say about the revision: the one a manual sync asked for, never a stale one."""

from __future__ import annotations

from typing import Any

from cli.appview import sync_line

SHA = "772b48c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6"


def _app(status: str, *, requested: str | None = None, synced: str = SHA) -> dict[str, Any]:
    state: dict[str, Any] = {"syncResult": {"revision": synced, "resources": []}}
    if requested is not None:
        state["syncResult"]["source"] = {"targetRevision": requested}
    return {
        "spec": {"source": {"targetRevision": "main"}},
        "status": {"sync": {"status": status, "revision": SHA}, "operationState": state},
    }


def test_a_sync_of_a_named_revision_says_that_revision() -> None:
    assert sync_line(_app("Synced", requested="772b48c")) == "Synced to 772b48c"
    assert sync_line(_app("Synced", requested="v1.2")) == "Synced to v1.2 (772b48c)"


def test_a_sync_of_the_target_says_the_target() -> None:
    assert sync_line(_app("Synced", requested="main")) == "Synced to main (772b48c)"
    assert sync_line(_app("Synced")) == "Synced to main (772b48c)"


def test_a_later_comparison_with_another_commit_says_the_spec_target() -> None:
    app = _app("OutOfSync", requested="772b48c", synced="0" * 40)
    assert sync_line(app) == "OutOfSync from main (772b48c)"


def test_unknown_does_not_pass_an_old_commit_off_as_current() -> None:
    line = sync_line(_app("Unknown"))
    assert line.startswith("Unknown: could not compare with main") and "last compared: 772b48c" in line
