"""CloudEvents on Kafka: both content modes round-trip, and bad records say why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eventing.cloudevents_kafka import Envelope, UndecodableRecord, decode, encode

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
EVENT = Envelope(
    id="evt-1",
    type="com.mariospizzeria.order.placed.v1",
    source="/mariospizzeria/orders",
    subject="order-1",
    time=datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
    data={"order_id": "order-1", "total": "12.99"},
    partition_key="order-1",
    traceparent=TRACEPARENT,
    extensions={"aggregateversion": "3"},
)


def test_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_value() -> None:
    record = encode(EVENT)
    headers = dict(record.headers)
    assert record.key == b"order-1"
    assert json.loads(record.value) == EVENT.data
    assert headers["ce_id"] == b"evt-1"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"com.mariospizzeria.order.placed.v1"
    assert headers["ce_source"] == b"/mariospizzeria/orders"
    assert headers["ce_subject"] == b"order-1"
    assert headers["ce_time"] == b"2026-11-26T09:30:00Z"
    assert headers["ce_partitionkey"] == b"order-1"
    assert headers["ce_traceparent"] == TRACEPARENT.encode()
    assert headers["ce_aggregateversion"] == b"3"
    assert headers["content-type"] == b"application/json"


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_both_modes_decode_to_the_same_event(mode: str) -> None:
    record = encode(EVENT, mode=mode)  # type: ignore[arg-type]
    decoded = decode(record.key, record.value, record.headers)
    assert decoded == EVENT


def test_structured_mode_is_one_json_document() -> None:
    record = encode(EVENT, mode="structured")
    assert dict(record.headers) == {"content-type": b"application/cloudevents+json"}
    document = json.loads(record.value)
    assert document["id"] == "evt-1"
    assert document["data"] == EVENT.data


def test_stored_json_is_sent_as_it_is() -> None:
    stored = b'{"order_id": "order-1", "total": "12.99"}'
    assert encode(EVENT, data_json=stored).value == stored


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "not a CloudEvent"),
        (
            [("ce_id", b"1"), ("ce_type", b"t"), ("ce_source", b"s")],
            b"{}",
            "missing ce_specversion",
        ),
        ([("ce_specversion", b"0.3"), ("ce_id", b"1")], b"{}", "unsupported ce_specversion"),
        ([("ce_specversion", b"1.0"), ("ce_type", b"t"), ("ce_source", b"s")], b"{}", "ce_id"),
        (
            [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_type", b"t"), ("ce_source", b"s")],
            b"[1, 2]",
            "must be a JSON object",
        ),
        ([("content-type", b"application/cloudevents+json")], b"\xff", "not JSON"),
        (
            [("content-type", b"application/cloudevents+json")],
            b'{"type": "t", "source": "s", "specversion": "1.0"}',
            "missing required attribute(s): id",
        ),
    ],
)
def test_bad_records_are_refused_with_a_reason(
    headers: list[tuple[str, bytes]], value: bytes, reason: str
) -> None:
    with pytest.raises(UndecodableRecord) as refused:
        decode(b"k", value, headers)
    assert reason in refused.value.reason
