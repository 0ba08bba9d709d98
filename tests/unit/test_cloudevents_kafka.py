"""CloudEvents on Kafka: both content modes round-trip, and bad records say why."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from eventing.cloudevents_kafka import Envelope, decode, encode
from eventing.errors import UndecodableRecord

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


@pytest.mark.parametrize(
    "envelope",
    [
        EVENT,
        dataclasses.replace(EVENT, subject=None, traceparent=None, extensions={}),
        dataclasses.replace(EVENT, time=datetime(2026, 11, 26, 9, 30, 0, 123456, tzinfo=UTC)),
        dataclasses.replace(
            EVENT, time=datetime(2026, 11, 26, 10, 30, tzinfo=timezone(timedelta(hours=1)))
        ),
        dataclasses.replace(EVENT, partition_key=None, source="/ü/naïve"),
    ],
)
def test_binary_encoding_writes_exactly_what_the_sdk_writes(envelope: Envelope) -> None:
    """Our direct binary encoder (the relay's hot path) against the SDK's ``to_binary``."""
    data = json.dumps(envelope.data).encode()
    ours = encode(envelope, data_json=data)
    attributes = {
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": envelope.subject,
        "time": envelope.time,
        "partitionkey": envelope.partition_key,
        "traceparent": envelope.traceparent,
        **envelope.extensions,
    }
    sdk = ce_kafka.to_binary(
        CloudEvent(
            attributes={name: value for name, value in attributes.items() if value is not None},
            data=data,
        ),
        JSONFormat(),
    )
    assert ours.headers == list(sdk.headers.items())
    assert ours.value == sdk.value
    assert ours.key == (sdk.key.encode() if isinstance(sdk.key, str) else sdk.key)


@pytest.mark.parametrize(
    "envelope",
    [
        dataclasses.replace(EVENT, id=""),
        dataclasses.replace(EVENT, extensions={"Bad-Name": "x"}),
        dataclasses.replace(EVENT, extensions={"data": "x"}),
    ],
)
def test_binary_encoding_refuses_what_the_spec_forbids(envelope: Envelope) -> None:
    with pytest.raises(ValueError, match=r"must not be empty|extension name"):
        encode(envelope)
