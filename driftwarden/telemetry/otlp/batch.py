"""A batch span processor that encodes each span when it ends and exports bytes from its own thread.

Adapter between the SDK's tracer and ``driftwarden.telemetry.otlp.export``. The SDK's BatchSpanProcessor
keeps every
ended span object until its export thread encodes it, seconds later: hundreds of span objects outlive
their request, the garbage collector walks them again and again, and the encoding runs on another thread
that takes the GIL from the event loop. Here a span becomes its OTLP bytes
(driftwarden.telemetry.otlp.wire) the
moment it ends, on the thread that ended it, and only bytes wait in the queue. The export thread joins
them into one request per batch and hands it to the exporter; it never touches a span.

Same knobs and behaviour as the SDK's processor: a bounded queue (a full queue drops new spans and says so
in the log, once until the next export), batches of at most ``max_export_batch_size`` sent when that many
wait or every ``schedule_delay`` seconds, ``force_flush`` and ``shutdown`` export what is queued.
Unsampled spans are not exported. It must not decide what a span holds; that is the tracer's callers'.
"""

from __future__ import annotations

import collections
import logging
import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from driftwarden.telemetry.otlp.export import EncodedBatch
from driftwarden.telemetry.otlp.wire import EncodedSpan, encode_span, request

log = logging.getLogger(__name__)


class WireBatchSpanProcessor(SpanProcessor):
    """Encode on end, queue bytes, export ``EncodedBatch`` requests from one daemon thread."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay: float = 5.0,
    ) -> None:
        if not 0 < max_export_batch_size <= max_queue_size:
            raise ValueError("need 0 < max_export_batch_size <= max_queue_size")
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay = schedule_delay
        self.dropped = 0
        """Spans dropped because the queue was full, since start."""
        self._queue: collections.deque[EncodedSpan] = collections.deque()
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._warned = False
        self._worker = threading.Thread(target=self._work, name="OtlpWireSpanExport", daemon=True)
        self._worker.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or span.context is None or not span.context.trace_flags.sampled:
            return
        if len(self._queue) >= self.max_queue_size:
            self.dropped += 1
            if not self._warned:
                self._warned = True
                log.warning("span export queue full (%d): dropping spans", self.max_queue_size)
            return
        self._queue.append(encode_span(span))
        if len(self._queue) >= self.max_export_batch_size and not self._wake.is_set():
            self._wake.set()

    def _work(self) -> None:
        while not self._stopping:
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            if not self._stopping:
                self._export_queued()

    def _export_queued(self) -> bool:
        """Export everything queued now, a batch at a time; False when any batch failed."""
        ok = True
        with self._export_lock:
            while self._queue:
                size = min(self.max_export_batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
                ok = self._send(batch) and ok
        return ok

    def _send(self, batch: list[EncodedSpan]) -> bool:
        self._warned = False
        try:
            result = self.exporter.export(EncodedBatch(request(batch), len(batch)))  # type: ignore[arg-type]
        except Exception:  # the export thread must outlive any exporter failure
            log.exception("exporting %d spans failed", len(batch))
            return False
        return result is SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued now, on the calling thread (the SDK's exporters bound each request)."""
        return self._export_queued()

    def shutdown(self) -> None:
        """Stop the thread, export what is left, shut the exporter down; safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._worker.join(timeout=30)
        self._export_queued()
        self.exporter.shutdown()
