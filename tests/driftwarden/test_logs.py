"""driftwarden.logs: event lines as key=value text or JSON objects, none formatted when the level is off."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from driftwarden import logs

EVENT = "heal app=%s object=%s fields=%s manager=%s seconds=%.3f healed=%s"
ARGS = (
    "shop/web",
    "apps/Deployment production/web",
    ("spec.replicas", "data.color"),
    "kubectl edit",
    0.01234,
    True,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where a test sends its log lines; the root logger gets its handlers and level back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_renders_an_event_line_as_key_value_pairs(stream: io.StringIO) -> None:
    logs.configure(level="info", fmt="text", stream=stream)
    logging.getLogger("driftwarden.test").info(EVENT, *ARGS)
    line = stream.getvalue().strip()
    assert " INFO driftwarden.test heal app=shop/web " in line
    assert line.endswith(
        'object="apps/Deployment production/web" fields=spec.replicas,data.color manager="kubectl edit" '
        "seconds=0.012 healed=True"
    )


def test_json_writes_one_object_per_line_with_each_key_a_field(stream: io.StringIO) -> None:
    logs.configure(level="info", fmt="json", stream=stream)
    log = logging.getLogger("driftwarden.test")
    log.info(EVENT, *ARGS)
    log.warning("a plain line about %s", "something")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (
        first["level"] == "INFO"
        and first["logger"] == "driftwarden.test"
        and first["time"].endswith("+00:00")
    )
    assert first["event"] == "heal" and first["app"] == "shop/web" and first["manager"] == "kubectl edit"
    assert first["fields"] == ["spec.replicas", "data.color"]
    assert first["seconds"] == pytest.approx(0.01234) and first["healed"] is True
    assert first["message"].startswith("heal app=shop/web object=")
    assert second == {"time": second["time"], "level": "WARNING", "logger": "driftwarden.test",
                      "message": "a plain line about something"}  # fmt: skip


def test_an_exception_is_one_json_line_too(stream: io.StringIO) -> None:
    logs.configure(level="info", fmt="json", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("driftwarden.test").exception("sync app=%s failed=%d", "shop/web", 1)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "sync" and record["failed"] == 1 and "ValueError: boom" in record["exc_info"]


def test_a_message_that_only_looks_like_an_event_is_written_as_it_is(stream: io.StringIO) -> None:
    logs.configure(level="info", fmt="json", stream=stream)
    log = logging.getLogger("driftwarden.test")
    log.info("serving on https://%s:%d", "0.0.0.0", 8443)
    log.info("push rejected status=%s: %s", 401, "bad signature")  # words after the pairs: not an event
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "serving on https://0.0.0.0:8443" and "event" not in first
    assert "event" not in second


class Counted:
    """An argument that counts how often it was turned into text."""

    def __init__(self) -> None:
        self.formatted = 0

    def __str__(self) -> str:
        self.formatted += 1
        return "counted"


def test_nothing_is_formatted_when_the_level_is_off(stream: io.StringIO) -> None:
    logs.configure(level="warning", fmt="json", stream=stream)
    argument = Counted()
    logging.getLogger("driftwarden.test").info("admission name=%s fields=%s", argument, (argument,))
    assert argument.formatted == 0 and stream.getvalue() == ""


def test_configure_again_replaces_the_handler_instead_of_doubling_lines(stream: io.StringIO) -> None:
    logs.configure(level="info", fmt="json", stream=stream)
    logs.configure(level="info", fmt="text", stream=stream)
    logging.getLogger("driftwarden.test").info("sync app=%s", "shop/web")
    assert stream.getvalue().count("sync app=shop/web") == 1 and not stream.getvalue().startswith("{")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        logs.formatter("xml")
