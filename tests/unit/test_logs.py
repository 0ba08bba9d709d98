"""Log lines about an event carry its ids as JSON fields, and the trace id when a span is active."""

from __future__ import annotations

import json
import logging
import time

import pytest
from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from eventing.consumer import _log_fields
from eventing.logs import JsonFormatter, RepeatsFilter, TraceContextFilter
from eventing.outage import Outage


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
    assert document["record_key"] == "order-9"
    assert document["handler"] == "kitchen.queue_ticket"
    assert document["trace_id"] == span_trace_id


def library_line(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_library_repeating_itself_is_let_through_once_per_window() -> None:
    repeats = RepeatsFilter("aiokafka", window=60)
    unable = "Unable connect to node with id %s: %s"
    first = [repeats.filter(library_line("aiokafka", unable, 1, "closed")) for _ in range(50)]
    assert first == [True] + [False] * 49
    # Another message of the library, and anything of ours, are not held back.
    assert repeats.filter(library_line("aiokafka.consumer", "Heartbeat failed"))
    assert all(repeats.filter(library_line("eventing.relay", "relay lost")) for _ in range(3))


def test_the_line_after_a_window_says_how_many_were_held_back() -> None:
    repeats = RepeatsFilter("aiokafka", window=0.05)
    assert repeats.filter(library_line("aiokafka", "Unable connect to node with id %s", 1))
    for _ in range(7):
        repeats.filter(library_line("aiokafka", "Unable connect to node with id %s", 1))
    time.sleep(0.06)
    line = library_line("aiokafka", "Unable connect to node with id %s", 1)
    assert repeats.filter(line)
    assert "(and 7 like it in the last" in line.getMessage()


def test_an_outage_is_logged_when_it_begins_and_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(logging.getLogger("test.outage"), "sms dispatcher")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        assert [outage.failed(ConnectionResetError("reset")) for _ in range(5)] == [1, 2, 3, 4, 5]
        outage.recovered()
        outage.recovered()  # nothing to say: it was working
        outage.failed(TimeoutError())  # a new outage: logged again
    assert [(r.levelno, r.getMessage().split(" (")[0][:52]) for r in caplog.records] == [
        (logging.WARNING, "sms dispatcher failed"),
        (logging.INFO, "sms dispatcher working again after 5 failed attempts"),
        (logging.WARNING, "sms dispatcher failed"),
    ]
    assert outage.failures_in_a_row == 1
