"""How both processes log: one set-up, text or JSON lines, and cheap structured event lines.

An *event line* is an ordinary logging call whose template is ``"<event> key=%s key=%s ..."``, e.g.

    log.info("heal app=%s object=%s fields=%s seconds=%.3f", app, ref, paths, latency)

When its level is off, logging drops the call before anything is formatted and it builds no dict, so it
costs next to nothing on a hot path (the admission review). When it is written, the ``text`` format renders
``key=value`` pairs (a sequence joined by commas, a value with spaces or quotes JSON-quoted), and the
``json`` format one object per line with ``event`` and every key as a field of its own (through
python-json-logger). Any other line is written as it is, with its level and logger.

It must not read the environment (the CLI passes level and format), and it logs only what it is handed:
callers pass names, kinds and field paths, never a value of a Secret (a field path names a key, not its
value).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Mapping
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from driftwarden.settings import LOG_FORMATS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_SPEC = r"%[-#0 +]?\d*(?:\.\d+)?[sdfr]"
_EVENT = re.compile(rf"(?P<event>[a-z][\w.-]*)(?P<pairs>(?: [a-z_][\w.]*={_SPEC})+)")
_PAIR = re.compile(rf" (?P<key>[a-z_][\w.]*)=(?P<spec>{_SPEC})")
_SEQUENCES = (list, tuple, set, frozenset)
_QUOTED = re.compile(r'[\s"=]')
"""A text value with any of these is written JSON-quoted, so ``key=value`` pairs stay readable by machines."""


@functools.lru_cache(maxsize=256)
def _template(msg: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """``"heal app=%s n=%d"`` → ``("heal", (("app", "%s"), ("n", "%d")))``; None for any other message."""
    match = _EVENT.fullmatch(msg)
    if match is None:
        return None
    return match["event"], tuple((m["key"], m["spec"]) for m in _PAIR.finditer(match["pairs"]))


def _parsed(record: logging.LogRecord) -> tuple[str, tuple[tuple[str, str, Any], ...]] | None:
    """The event name and its ``(key, spec, value)`` triples, when ``record`` is an event line."""
    if not isinstance(record.msg, str) or not isinstance(record.args, tuple):
        return None
    template = _template(record.msg)
    if template is None or len(template[1]) != len(record.args):
        return None
    event, pairs = template
    return event, tuple((key, spec, value) for (key, spec), value in zip(pairs, record.args, strict=True))


def _text(spec: str, value: Any) -> str:
    if isinstance(value, _SEQUENCES):
        text = ",".join(map(str, value))
    elif spec == "%s":
        text = str(value)
    else:
        try:
            text = spec % (value,)
        except (TypeError, ValueError):
            text = str(value)
    return json.dumps(text) if not text or _QUOTED.search(text) else text


def _plain(value: Any) -> Any:
    """A JSON value for a field: numbers, booleans and None as they are, sequences as lists of strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, _SEQUENCES):
        return [str(item) for item in value]
    return str(value)


def event_text(record: logging.LogRecord) -> str | None:
    """The text of an event line (``heal app=ns/web fields=spec.replicas,data.color``); None otherwise."""
    parsed = _parsed(record)
    if parsed is None:
        return None
    event, triples = parsed
    return " ".join([event, *(f"{key}={_text(spec, value)}" for key, spec, value in triples)])


def event_fields(record: logging.LogRecord) -> Mapping[str, Any] | None:
    """``{"event": ..., key: value, ...}`` of an event line, as the JSON format writes it; else None."""
    parsed = _parsed(record)
    if parsed is None:
        return None
    event, triples = parsed
    return {"event": event, **{key: _plain(value) for key, _spec, value in triples}}


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines; an event line's message is rendered as ``key=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        text = event_text(record)
        if text is None:
            return super().format(record)
        saved = record.msg, record.args
        record.msg, record.args = text, None  # other handlers must see the record unchanged
        try:
            return super().format(record)
        finally:
            record.msg, record.args = saved


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and for an
    event line ``event`` and each of its keys."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level", "name": "logger"}
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)
        fields = event_fields(record)
        if fields is not None:
            log_data["message"] = event_text(record)
            for key, value in fields.items():
                log_data.setdefault(key, value)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``fmt`` (one of ``LOG_FORMATS``)."""
    if fmt == "json":
        return JsonLineFormatter()
    if fmt == "text":
        return TextFormatter(TEXT_FORMAT)
    raise ValueError(f"unknown log format {fmt!r} (one of {', '.join(LOG_FORMATS)})")


def configure(*, level: str = "info", fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Send every logger's lines at ``level`` and above to ``stream`` (default stderr) in ``fmt``.

    Replaces whatever handlers the root logger had, so calling it again (a test, a second command in one
    process) does not double every line.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
