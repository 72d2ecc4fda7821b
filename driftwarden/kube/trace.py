"""Client spans for every Kubernetes API request (OpenTelemetry HTTP client conventions).

Thin adapter: ``TracedApiClient`` is kubernetes-asyncio's ``ApiClient`` with one span of kind CLIENT around
each HTTP request it sends, typed APIs and ``driftwarden.kube.rest`` alike, so a heal or a pass shows which
calls it made, how long each took and which one failed. A span is named by the method and the path with the
namespace and object name replaced (``PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}``), which
keeps names few; the real path is in ``url.full``. Bodies never go into a span (they may hold Secret data),
nor does an error's response body: only the status code and its reason phrase. A watch's span ends when the
stream starts, not when it ends.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode


def path_template(path: str) -> str:
    """``/api/v1/namespaces/ns/pods/web/log`` → ``/api/v1/namespaces/{namespace}/pods/{name}/log``."""
    parts = path.split("/")
    # "" "api" version ... or "" "apis" group version ...; anything else is left as it is.
    start = {"api": 3, "apis": 4}.get(parts[1] if len(parts) > 1 else "")
    if start is None or len(parts) <= start:
        return path
    rest = parts[start:]
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest[1] = "{namespace}"
        head, rest = rest[:2], rest[2:]
    else:
        head = []
    if len(rest) >= 2:
        rest[1] = "{name}"
    return "/".join(parts[:start] + head + rest)


def _start_attributes(method: str, split: SplitResult) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.full": f"{split.scheme}://{split.netloc}{split.path}",
        "server.address": split.hostname or "",
    }
    if split.port is not None:
        attributes["server.port"] = split.port
    return attributes


def _failed(span: Span, *, status: int | None, error_type: str, description: str) -> None:
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description))


class TracedApiClient(client.ApiClient):
    """An ``ApiClient`` whose requests are client spans of ``tracer`` (children of the current span)."""

    def __init__(self, configuration: client.Configuration, *, tracer: trace.Tracer) -> None:
        super().__init__(configuration)
        self.tracer = tracer

    async def request(  # noqa: PLR0917  # ApiClient.request's own signature, which this overrides
        self, method: str, url: str, query_params: Any = None, headers: Any = None, post_params: Any = None,
        body: Any = None, _preload_content: bool = True, _request_timeout: Any = None,
    ) -> Any:  # fmt: skip
        split = urlsplit(url)
        with self.tracer.start_as_current_span(
            f"{method} {path_template(split.path)}", kind=SpanKind.CLIENT,
            attributes=_start_attributes(method, split),
            record_exception=False, set_status_on_exception=False,
        ) as span:  # fmt: skip
            try:
                response = await super().request(
                    method, url, query_params=query_params, headers=headers, post_params=post_params,
                    body=body, _preload_content=_preload_content, _request_timeout=_request_timeout,
                )  # fmt: skip
            except ApiException as exc:
                # str(exc) carries the response body: only the code and its reason phrase go in.
                reason = f"{exc.status} {exc.reason or ''}".strip()
                _failed(span, status=exc.status or None, error_type=str(exc.status or "ApiException"),
                        description=reason)  # fmt: skip
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                span.record_exception(exc)
                _failed(span, status=None, error_type=type(exc).__qualname__, description=str(exc))
                raise
            span.set_attribute("http.response.status_code", int(response.status))
            return response
