"""Tracing helpers: W3C traceparent strings, Kafka headers, the ASGI middleware, the span file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from eventing.logs import TraceContextFilter
from eventing.tracing import (
    JsonLinesSpanExporter,
    configure_tracing,
    context_from_traceparent,
    current_traceparent,
    start_span,
    traceparent_from_headers,
    with_traceparent_header,
)
from service_kit.tracing import TracingMiddleware

ORIGIN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HOP = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("unit-tests", exporters=[exporter])
    try:
        yield exporter
    finally:
        exporter.shutdown()


def test_no_traceparent_outside_a_span() -> None:
    assert current_traceparent() is None


def test_a_span_started_from_a_traceparent_continues_its_trace(
    spans: InMemorySpanExporter,
) -> None:
    with start_span("child", parent=ORIGIN, kind=SpanKind.CONSUMER) as span:
        inside = current_traceparent()
    assert inside is not None
    trace_id, span_id = inside.split("-")[1:3]
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span_id == f"{span.get_span_context().span_id:016x}"
    (finished,) = spans.get_finished_spans()
    assert finished.parent is not None
    assert f"{finished.parent.span_id:016x}" == "b7ad6b7169203331"
    assert finished.kind == SpanKind.CONSUMER


def test_malformed_traceparents_are_ignored() -> None:
    assert context_from_traceparent(None) is None
    assert context_from_traceparent("not-a-traceparent") is None
    assert context_from_traceparent("00-" + "0" * 32 + "-" + "0" * 16 + "-01") is None


def test_the_per_hop_header_wins_over_the_cloudevents_extension() -> None:
    assert traceparent_from_headers([("ce_traceparent", ORIGIN.encode())]) == ORIGIN
    both = [("ce_traceparent", ORIGIN.encode()), ("traceparent", HOP.encode())]
    assert traceparent_from_headers(both) == HOP
    assert traceparent_from_headers([("ce_id", b"x")]) is None
    headers = [("ce_id", b"x"), ("traceparent", b"old")]
    assert with_traceparent_header(headers, HOP) == [("ce_id", b"x"), ("traceparent", HOP.encode())]


@pytest.mark.parametrize("native", [False, True], ids=["middleware", "fastapi-native"])
async def test_each_request_gets_one_server_span_from_the_request_header(
    spans: InMemorySpanExporter, native: bool
) -> None:
    # FastAPI >= 0.165 starts the SERVER span itself; the middleware then adds none.
    app = FastAPI(telemetry={"tracing": native, "operation_spans": False})
    app.add_middleware(TracingMiddleware)
    seen: list[str | None] = []

    @app.get("/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        seen.append(current_traceparent())
        return {"thing": thing}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/things/1", headers={"traceparent": ORIGIN})).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/things/2")).status_code == 200
    servers = [span for span in spans.get_finished_spans() if span.kind == SpanKind.SERVER]
    traced = [span for span in servers if span.name == "GET /things/{thing}"]
    assert len(traced) == 2, [span.name for span in servers]
    assert [span.name for span in servers if span not in traced] == (
        ["GET /healthz"] if native else []  # the middleware leaves probes untraced
    )
    first, second = traced
    assert first.parent is not None and f"{first.parent.span_id:016x}" == "b7ad6b7169203331"
    assert first.context is not None and second.context is not None
    assert f"{first.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert second.parent is None  # no header: a new trace
    assert second.context.trace_id != first.context.trace_id
    assert first.attributes is not None
    assert first.attributes["http.response.status_code"] == 200
    assert [value.split("-")[1:3] for value in seen if value is not None] == [
        ["0af7651916cd43dd8448eb211c80319c", f"{first.context.span_id:016x}"],
        [f"{second.context.trace_id:032x}", f"{second.context.span_id:016x}"],
    ]


def test_the_file_exporter_writes_one_json_span_per_line(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = InMemorySpanExporter()
    # The provider is process-wide and keeps the service name of the first call in this run.
    provider = configure_tracing("unit-tests", exporters=[exporter, JsonLinesSpanExporter(path)])
    assert provider is not None
    try:
        with start_span("outer", parent=ORIGIN), start_span("inner", attributes={"k": "v"}):
            pass
    finally:
        exporter.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    inner, outer = lines[-2:]
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert inner["parent_span_id"] == outer["span_id"]
    assert outer["parent_span_id"] == "b7ad6b7169203331"
    assert inner["trace_id"] == outer["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inner["attributes"] == {"k": "v"}
    assert inner["service"] == provider.resource.attributes["service.name"]
    assert inner["service"]


def test_log_records_get_the_trace_of_the_current_span(spans: InMemorySpanExporter) -> None:
    record = logging.makeLogRecord({"msg": "hello"})
    with start_span("logging", parent=ORIGIN) as span:
        TraceContextFilter().filter(record)
    assert record.__dict__["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert record.__dict__["span_id"] == f"{span.get_span_context().span_id:016x}"
    outside = logging.makeLogRecord({"msg": "hello"})
    TraceContextFilter().filter(outside)
    assert not hasattr(outside, "trace_id")


@pytest.mark.parametrize("exporting", [False, True])
def test_spans_are_recorded_only_while_something_exports_them(
    monkeypatch: pytest.MonkeyPatch, exporting: bool
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from eventing import tracing

    monkeypatch.setattr(tracing, "_exporting", exporting)
    provider = TracerProvider(sampler=tracing._RecordWhileExporting())
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent = context_from_traceparent(ORIGIN.replace("-01", "-00"))  # the caller dropped it
    with provider.get_tracer("t").start_as_current_span("work", context=parent) as span:
        carried = current_traceparent()
        recording = span.is_recording()
    # Either way the trace goes on: the same trace id, a span id of its own, in the logs too.
    assert carried is not None
    assert carried.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert carried.split("-")[2] != "b7ad6b7169203331"
    assert recording is exporting
    assert len(exporter.get_finished_spans()) == (1 if exporting else 0)
