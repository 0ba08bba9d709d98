"""One trace per order, across HTTP, the outbox, the relay process, Kafka and a consumer.

Two processes take part. This pytest process runs the orders API in-process (ASGI) and, later,
an ``EventConsumer``; their spans land in an ``InMemorySpanExporter``. The relay is a real
subprocess (``orders relay``) on the same database; it writes its spans to a file through
``EVENTING_TRACE_FILE``. The chain checked:

    caller (incoming traceparent) → SERVER "POST /orders" → … → INTERNAL "outbox enqueue"
                                  ↘ outbox row's traceparent = a span of the request
    relay: PRODUCER "publish pizzeria.orders", parent = the stored traceparent (cross-process)
    consumer: CONSUMER "process pizzeria.orders", parent = the publish span (per-hop header)
              → INTERNAL "handle <handler>"
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from contracts.catalogue import OrderPlaced
from contracts.topics import ORDERS, TOPOLOGY
from eventing.consumer import EventConsumer, ReceivedEvent, Subscription
from eventing.database import asyncpg_dsn, session_factory
from eventing.settings import ConsumerSettings
from eventing.tracing import TRACE_FILE_ENV, configure_tracing
from orders.entrypoints.api import create_app
from orders.settings import OrdersSettings
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.processes import relay_process
from tests.support.system import migrated_database

HANDLER = "tracing-probe"


@pytest.fixture
def memory_spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("pytest", exporters=[exporter])
    try:
        yield exporter
    finally:
        exporter.shutdown()  # later exports to it are dropped


def parse_traceparent(value: str) -> tuple[str, str]:
    version, trace_id, span_id, _flags = value.split("-")
    assert version == "00"
    return trace_id, span_id


def hex_span(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def hex_parent(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """The span ids above ``span`` among ``spans``, nearest first (then the remote parent)."""
    by_id = {hex_span(candidate): candidate for candidate in spans}
    chain: list[str] = []
    parent = hex_parent(span)
    while parent is not None:
        chain.append(parent)
        above = by_id.get(parent)
        parent = hex_parent(above) if above is not None else None
    return chain


def in_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.context is not None and f"{span.context.trace_id:032x}" == trace_id
    ]


def one(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    found = [span for span in spans if span.name == name and span.kind == kind]
    assert len(found) == 1, f"{name}: {[(s.name, s.kind) for s in spans]}"
    return found[0]


def read_span_file(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_one_trace_follows_an_order_across_processes(
    infra: Infra, memory_spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    trace_id = secrets.token_hex(16)
    caller_span_id = secrets.token_hex(8)
    incoming = f"00-{trace_id}-{caller_span_id}-01"

    # ---- process A: the orders API, in-process, with the caller's traceparent
    url = await migrated_database(infra, "orders")
    app = create_app(
        OrdersSettings(database_url=url, kafka_bootstrap_servers=infra.kafka_bootstrap)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            response = await client.post(
                "/orders",
                headers={"traceparent": incoming},
                json={
                    "customer": {"name": "Giulia Rossi", "phone": "+39 06 1234 5678"},
                    "lines": [{"pizza": "Margherita", "size": "medium", "quantity": 1}],
                    "fulfilment": "pickup",
                },
            )
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]

    ours = in_trace(memory_spans, trace_id)
    server = one(ours, "POST /orders", SpanKind.SERVER)
    assert hex_parent(server) == caller_span_id
    assert server.parent is not None and server.parent.is_remote
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 201
    enqueues = [s for s in ours if s.name == "outbox enqueue"]
    assert enqueues, [s.name for s in ours]
    # FastAPI's own operation spans (fastapi.endpoint...) may sit in between: it is a descendant.
    assert all(hex_span(server) in ancestors(s, ours) for s in enqueues)
    subjects = [(s.attributes or {}).get("cloudevents.event_subject") for s in enqueues]
    assert any(isinstance(subject, tuple) and order_id in subject for subject in subjects)

    # The outbox row stored the request's span as the event's origin.
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        stored = await conn.fetchval(
            "SELECT traceparent FROM outbox WHERE subject = $1 AND event_type = $2",
            order_id,
            OrderPlaced.event_type,
        )
    finally:
        await conn.close()
    assert stored is not None
    stored_trace_id, stored_span_id = parse_traceparent(stored)
    assert stored_trace_id == trace_id
    (origin,) = [s for s in ours if hex_span(s) == stored_span_id]  # a span of the request
    assert origin is server or hex_span(server) in ancestors(origin, ours)

    # ---- a consumer in this process, positioned at the end of the topic before the relay runs
    received: list[ReceivedEvent[Any]] = []

    async def probe(_: AsyncSession, event: ReceivedEvent[Any]) -> None:
        if event.envelope.subject == order_id:
            received.append(event)

    engine = create_async_engine(url)
    consumer = EventConsumer(
        group_id=f"tracing-test-{uuid.uuid4().hex[:8]}",
        topics=[ORDERS.name],
        subscriptions=[Subscription(HANDLER, OrderPlaced, probe)],
        sessions=session_factory(engine),
        bootstrap_servers=infra.kafka_bootstrap,
        topology=TOPOLOGY,
        settings=ConsumerSettings(auto_offset_reset="latest"),
    )
    consuming = asyncio.create_task(consumer.run())
    trace_file = tmp_path / "relay-spans.jsonl"
    relay = relay_process(infra, url, name="tracing-relay")
    relay.env[TRACE_FILE_ENV] = str(trace_file)
    try:
        await eventually(lambda: consumer.ready()[0], timeout=60, what="the consumer's partitions")
        await asyncio.sleep(1.0)  # the new group's "latest" position is fetched after assignment

        # ---- process B: the relay subprocess publishes the row
        relay.start()
        await relay.wait_ready()
        await eventually(
            lambda: received, timeout=60, what="the order placed event at the consumer"
        )

        def publish_lines() -> list[dict[str, Any]]:
            return [
                line
                for line in read_span_file(trace_file)
                if line["trace_id"] == trace_id
                and line["attributes"].get("cloudevents.event_type") == OrderPlaced.event_type
            ]

        published = await eventually(
            publish_lines, timeout=60, what="the relay's publish span in its trace file"
        )
    finally:
        relay.terminate()
        consumer.stop()
        await asyncio.wait_for(consuming, timeout=30)
        await engine.dispose()

    # ---- the record: ce_traceparent is the origin (the request's span)
    (event,) = received
    assert event.envelope.traceparent == stored

    # ---- process B's span: a child of the stored context
    (publish,) = published
    assert publish["name"] == f"publish {ORDERS.name}"
    assert publish["kind"] == "PRODUCER"
    assert publish["service"] == "orders-relay"
    assert publish["parent_span_id"] == stored_span_id
    assert publish["attributes"]["cloudevents.event_id"] == event.id
    assert publish["status"] != "ERROR"

    # ---- back in process A: consumer span child of the publish span, handler span its child
    ours = in_trace(memory_spans, trace_id)
    process = one(ours, f"process {ORDERS.name}", SpanKind.CONSUMER)
    assert hex_parent(process) == publish["span_id"]
    assert process.parent is not None and process.parent.is_remote
    assert process.attributes is not None
    assert process.attributes["cloudevents.event_id"] == event.id
    assert process.attributes["cloudevents.event_type"] == OrderPlaced.event_type
    assert process.attributes["cloudevents.event_subject"] == order_id
    handle = one(ours, f"handle {HANDLER}", SpanKind.INTERNAL)
    assert hex_parent(handle) == hex_span(process)
    assert handle.attributes is not None
    assert handle.attributes["cloudevents.event_id"] == event.id

    # One trace everywhere: every span above carries the caller's trace id.
    assert {f"{s.context.trace_id:032x}" for s in (server, origin, *enqueues, process, handle)} == {
        trace_id
    }
    assert publish["trace_id"] == trace_id
