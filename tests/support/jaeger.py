"""A real Jaeger for tests: one per test session, and helpers to read traces back from its query API.

Use it in a test module with ``from tests.support.jaeger import jaeger_fixture  # noqa: F401`` (the fixture is
named ``jaeger``), or run ``running_jaeger(work_dir)`` yourself. Point a process at it with
``jaeger.otel_env()`` (OTEL_* settings, passed as the mapping driftwarden.telemetry.setup takes), flush that
process's TracerProvider, then ``await wait_for_traces(jaeger, "driftwarden-webhook", ...)``.

Jaeger's JSON: a trace is ``{traceID, spans, processes}``; a span ``{traceID, spanID, operationName,
references: [{refType: CHILD_OF|FOLLOWS_FROM, traceID, spanID}], tags: [{key, type, value}], processID}``.
OTLP parents become CHILD_OF references and OTLP span links FOLLOWS_FROM references.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.jaeger import Jaeger, find_jaeger
from driftwarden.settings import environment

Trace = dict[str, Any]
Span = dict[str, Any]


@contextlib.asynccontextmanager
async def running_jaeger(work_dir: Path) -> AsyncIterator[Jaeger]:
    """The pinned Jaeger (``make jaeger``) on free loopback ports, stopped on exit."""
    async with Jaeger(find_jaeger(environment()), work_dir) as jaeger:
        yield jaeger


@pytest.fixture(scope="session", name="jaeger")
async def jaeger_fixture(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Jaeger]:
    """The session's Jaeger; every test filters by its own service name, trace id or attribute."""
    async with running_jaeger(tmp_path_factory.mktemp("jaeger")) as jaeger:
        yield jaeger


async def wait_for_traces(
    jaeger: Jaeger,
    service: str,
    *,
    match: Callable[[Trace], bool] = lambda _trace: True,
    count: int = 1,
    seconds: float = 30,
    operation: str | None = None,
) -> list[Trace]:
    """Traces of ``service`` for which ``match`` holds, once there are at least ``count`` of them."""
    found: list[Trace] = []
    async with asyncio.timeout(seconds):
        while True:
            found = [t for t in await jaeger.traces(service, operation=operation) if match(t)]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.2)


async def wait_for_trace(jaeger: Jaeger, trace_id: str, *, spans: int = 1, seconds: float = 30) -> Trace:
    """The trace ``trace_id`` (32 hex digits) once Jaeger holds at least ``spans`` of its spans."""
    async with asyncio.timeout(seconds):
        while True:
            trace = await jaeger.trace(trace_id)
            if trace is not None and len(trace["spans"]) >= spans:
                return trace
            await asyncio.sleep(0.2)


def spans_named(trace: Trace, name: str) -> list[Span]:
    return [s for s in trace["spans"] if s["operationName"] == name]


def tags(span: Span) -> dict[str, Any]:
    """A span's attributes as a dict (Jaeger lists them as ``{key, type, value}``)."""
    return {t["key"]: t["value"] for t in span.get("tags") or []}


def service_of(trace: Trace, span: Span) -> str:
    return str(trace["processes"][span["processID"]]["serviceName"])


def parent_id(span: Span) -> str | None:
    """The spanID of the parent (the CHILD_OF reference), None for a root span."""
    for ref in span.get("references") or []:
        if ref["refType"] == "CHILD_OF":
            return str(ref["spanID"])
    return None


def children(trace: Trace, parent: Span) -> list[Span]:
    """Direct children of ``parent``, in start order."""
    found = [s for s in trace["spans"] if parent_id(s) == parent["spanID"]]
    return sorted(found, key=lambda s: s["startTime"])


def links(span: Span) -> list[tuple[str, str]]:
    """(traceID, spanID) of each span link (FOLLOWS_FROM reference), e.g. a heal's link to its edit."""
    return [
        (r["traceID"], r["spanID"]) for r in span.get("references") or [] if r["refType"] == "FOLLOWS_FROM"
    ]
