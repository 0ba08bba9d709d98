"""Distributed tracing (OpenTelemetry): one trace per request, across HTTP, outbox, Kafka and
consumers.

How the context travels:

* **HTTP in**: an HTTP middleware (the service kit's ``TracingMiddleware``) starts a SERVER
  span per request, as a child of the request's W3C ``traceparent`` header when there is one
  (else a new trace).
* **Outbox**: ``OutboxEvent.traceparent`` defaults to ``current_traceparent()``, so an event
  created inside a request (or inside a consumer's handler) stores the span that caused it in
  the outbox row's ``traceparent`` column. ``Outbox.enqueue`` has an "outbox enqueue" span.
* **Relay**: for each row with a stored traceparent, a PRODUCER span "publish <topic>" is a
  child of the stored context and lasts from ``send`` to the broker's ack. The record keeps the
  stored (origin) traceparent as the CloudEvents ``ce_traceparent`` header and gets a per-hop
  ``traceparent`` header carrying the producer span.
* **Consumer**: a CONSUMER span "process <topic>" per record, child of the per-hop
  ``traceparent`` header (falling back to ``ce_traceparent``), and an INTERNAL span
  "handle <handler>" per handler around its transaction. Events a handler enqueues default to
  the handler span, so the trace continues through the next service's outbox.

Off by default: ``configure_tracing`` installs a real SDK ``TracerProvider`` with no exporter.
Spans then have real ids, so trace context is still created, stored in the outbox, carried on
records and written to logs (``trace_id``), but nothing is exported, and nothing is recorded
either: the sampler drops every span while no exporter is installed, so a span costs its ids and
no attributes, events or processors (measured: a twentieth of a consumer's CPU went to spans
nobody would read). Exporting is switched on by the environment:

* ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): OTLP over HTTP
  (protobuf), batched; the exporter reads the other standard ``OTEL_EXPORTER_OTLP_*`` variables.
* ``EVENTING_TRACE_FILE=<path>``: a debugging aid (the tests use it to read a subprocess's
  spans): each finished span is appended to the file at once as one JSON object per line.
* ``OTEL_SDK_DISABLED=true``: no provider at all (the API's no-op tracer, which still passes an
  incoming context through but starts no trace of its own).

While nothing is exported, the relay skips its per-row spans (``exporting()`` is false) to keep
batches fast; consumers then fall back to ``ce_traceparent`` as the parent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = [
    "CE_TRACEPARENT_HEADER",
    "INSTRUMENTATION",
    "TRACEPARENT_HEADER",
    "TRACE_FILE_ENV",
    "JsonLinesSpanExporter",
    "configure_tracing",
    "context_from_traceparent",
    "current_traceparent",
    "end_span",
    "exporting",
    "format_traceparent",
    "open_span",
    "span_document",
    "start_span",
    "traceparent_from_headers",
    "tracer",
    "with_traceparent_header",
]

log = logging.getLogger("eventing.tracing")

TRACEPARENT_HEADER = "traceparent"  # the per-hop W3C header on Kafka records and HTTP requests
CE_TRACEPARENT_HEADER = "ce_traceparent"  # the CloudEvents distributed-tracing extension
TRACE_FILE_ENV = "EVENTING_TRACE_FILE"
INSTRUMENTATION = "eventing"

# The W3C format (the same rules as the SDK's TraceContextTextMapPropagator, without its overhead:
# the relay parses one per published row).
_TRACEPARENT_RE = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<span_id>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?$"
)
_lock = threading.Lock()
_provider: TracerProvider | None = None
_exporting = False


class _RecordWhileExporting(Sampler):
    """Every span is recorded and sampled once an exporter is installed, none before.

    Whatever the parent's sampled flag says: a service that exports records its spans even when
    the caller's (which exported nothing) were dropped, so one service can be traced alone.
    """

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        state = parent.trace_state if parent.is_valid else None
        if _exporting:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
        return SamplingResult(Decision.DROP, None, state)

    def get_description(self) -> str:
        return "RecordWhileExporting"


def configure_tracing(
    service_name: str, *, exporters: Sequence[SpanExporter] = ()
) -> TracerProvider | None:
    """Install the process's tracer provider (once) and the exporters the environment asks for.

    ``exporters`` are extra exporters fed synchronously (tests pass an ``InMemorySpanExporter``).
    A second call adds its ``exporters`` to the provider already installed. Returns the provider,
    or None when ``OTEL_SDK_DISABLED`` is true.
    """
    global _provider, _exporting
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    with _lock:
        if _provider is None:
            provider = TracerProvider(
                resource=Resource.create({SERVICE_NAME: service_name}),
                sampler=_RecordWhileExporting(),
            )
            if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
            ):
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
                _exporting = True
            trace_file = os.environ.get(TRACE_FILE_ENV)
            if trace_file:
                provider.add_span_processor(
                    SimpleSpanProcessor(JsonLinesSpanExporter(Path(trace_file)))
                )
                _exporting = True
            trace.set_tracer_provider(provider)
            _provider = provider
            log.info(
                "tracing configured for %s (%s)",
                service_name,
                "exporting" if _exporting else "not exporting",
            )
        for exporter in exporters:
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
            _exporting = True
        return _provider


def exporting() -> bool:
    """True when finished spans go somewhere; the relay skips its spans otherwise."""
    return _exporting


# A proxy until a provider is installed, then the provider's tracer: safe to make at import.
_TRACER = trace.get_tracer(INSTRUMENTATION)


def tracer() -> trace.Tracer:
    return _TRACER


# ---------------------------------------------------------------------- W3C trace context
def format_traceparent(span_context: trace.SpanContext) -> str | None:
    """The W3C ``traceparent`` string of ``span_context``; None when it is not valid."""
    if not span_context.is_valid:
        return None
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span, or None outside any (valid) span."""
    return format_traceparent(trace.get_current_span().get_span_context())


def context_from_traceparent(traceparent: str | None) -> Context | None:
    """A context whose (remote) parent span is ``traceparent``; None when absent or malformed."""
    if not traceparent:
        return None
    match = _TRACEPARENT_RE.match(traceparent.strip().lower())
    if match is None or match["version"] == "ff":
        return None
    if match["version"] == "00" and match["rest"]:
        return None  # version 00 has exactly four fields
    span_context = trace.SpanContext(
        trace_id=int(match["trace_id"], 16),
        span_id=int(match["span_id"], 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(match["flags"], 16)),
    )
    if not span_context.is_valid:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


@contextlib.contextmanager
def start_span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """Start ``name`` as the current span, child of ``parent`` (a traceparent) when given.

    Without a (valid) ``parent`` the span is a child of the current span, or starts a new trace.
    """
    context = context_from_traceparent(parent) if parent else None
    with tracer().start_as_current_span(
        name, context=context, kind=kind, attributes=dict(attributes or {})
    ) as span:
        yield span


def open_span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Span:
    """Like ``start_span``, but neither made current nor ended here: for a span that outlives
    a block (a consumed record's span lasts until the transaction of its batch commits). Make it
    current with ``trace.use_span(span, end_on_exit=False)``; the caller ends it."""
    context = context_from_traceparent(parent) if parent else None
    return tracer().start_span(name, context=context, kind=kind, attributes=dict(attributes or {}))


# ---------------------------------------------------------------------- Kafka headers
def traceparent_from_headers(headers: Iterable[tuple[str, bytes | None]]) -> str | None:
    """The parent for a consumed record: the per-hop ``traceparent``, else ``ce_traceparent``."""
    found: dict[str, bytes] = {}
    for name, value in headers:
        lowered = name.lower()
        if value is not None and lowered in (TRACEPARENT_HEADER, CE_TRACEPARENT_HEADER):
            found[lowered] = value
    raw = found.get(TRACEPARENT_HEADER) or found.get(CE_TRACEPARENT_HEADER)
    if raw is None:
        return None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None


def with_traceparent_header(
    headers: list[tuple[str, bytes]], traceparent: str | None
) -> list[tuple[str, bytes]]:
    """``headers`` with the per-hop ``traceparent`` header set to ``traceparent`` (in place)."""
    headers[:] = [(name, value) for name, value in headers if name != TRACEPARENT_HEADER]
    if traceparent:
        headers.append((TRACEPARENT_HEADER, traceparent.encode("ascii")))
    return headers


def end_span(span: Span, error: BaseException | None = None) -> None:
    """End a span started with ``tracer().start_span``, marking it failed when ``error``."""
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


# ---------------------------------------------------------------------- HTTP
class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span to a file as one JSON object per line (``EVENTING_TRACE_FILE``).

    A debugging aid for operators and the way tests read the spans of another process. Fields:
    ``name``, ``kind``, ``trace_id``, ``span_id``, ``parent_span_id`` (hex, or null),
    ``service``, ``start``/``end`` (ns since the epoch), ``status``, ``status_description``,
    ``attributes``, and ``events`` (each ``name`` and ``attributes``: a recorded exception's
    type, message and stack trace). So the file holds every text an OTLP exporter would send.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_document(span), default=str) + "\n" for span in spans]
        try:
            with self._lock, self._path.open("a", encoding="utf-8") as file:
                file.write("".join(lines))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_document(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as a JSON-ready dict (the ``JsonLinesSpanExporter`` line format)."""
    context = span.get_span_context()
    parent = span.parent
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "service": span.resource.attributes.get(SERVICE_NAME),
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": event.name, "attributes": dict(event.attributes or {})}
            for event in span.events
        ],
    }
