"""Log lines about an event carry its ids as JSON fields, and the trace id when a span is active."""

from __future__ import annotations

import json
import logging

from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from eventing.consumer import _log_fields
from eventing.logs import JsonFormatter, TraceContextFilter


def test_event_fields_and_trace_id_appear_in_the_json_line() -> None:
    record = ConsumerRecord(
        topic="pizzeria.orders",
        partition=2,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=b"order-9",
        value=b"{}",
        checksum=None,
        serialized_key_size=7,
        serialized_value_size=2,
        headers=[("ce_id", b"evt-9")],
    )
    line = logging.LogRecord(
        "eventing.consumer", logging.WARNING, __file__, 1, "handler failed", None, None
    )
    for name, value in _log_fields(record, "kitchen.queue_ticket").items():
        setattr(line, name, value)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("process"):
        TraceContextFilter().filter(line)
        span_trace_id = f"{trace.get_current_span().get_span_context().trace_id:032x}"
    document = json.loads(JsonFormatter("kitchen").format(line))
    assert document["service"] == "kitchen"
    assert document["event_id"] == "evt-9"
    assert document["order_id"] == "order-9"
    assert document["handler"] == "kitchen.queue_ticket"
    assert document["trace_id"] == span_trace_id
