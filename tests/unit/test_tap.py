"""The event tap's pure parts: record to JSON line, filters, the personal-data policy."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import ConsumerRecord

from contracts.cli import main
from contracts.topics import TOPOLOGY
from eventing.cloudevents_kafka import AGGREGATE_VERSION, Envelope, encode
from eventing.errors import RestrictedTopicError
from eventing.tap import TapFilter, as_event, check_topics

WHEN = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)


def record(order_id: str = "o-1", offset: int = 7) -> ConsumerRecord[bytes, bytes]:
    encoded = encode(
        Envelope(
            id="e-1",
            type="com.mariospizzeria.order.cooking_started.v1",
            source="/mariospizzeria/orders",
            subject=order_id,
            time=WHEN,
            partition_key=order_id,
            data={"order_id": order_id, "started_at": WHEN.isoformat()},
            extensions={AGGREGATE_VERSION: "3"},
        )
    )
    return ConsumerRecord(
        topic="pizzeria.orders",
        partition=2,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=encoded.key,
        value=encoded.value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=encoded.headers,
    )


def test_a_record_becomes_one_json_object_with_its_coordinates() -> None:
    event = as_event(record())
    assert json.loads(json.dumps(event)) == {
        "specversion": "1.0",
        "id": "e-1",
        "type": "com.mariospizzeria.order.cooking_started.v1",
        "source": "/mariospizzeria/orders",
        "subject": "o-1",
        "time": WHEN.isoformat(),
        "aggregateversion": "3",
        "data": {"order_id": "o-1", "started_at": WHEN.isoformat()},
        "topic": "pizzeria.orders",
        "partition": 2,
        "offset": 7,
        "key": "o-1",
    }


def test_a_record_that_is_no_cloudevent_is_shown_with_the_reason() -> None:
    broken = dataclasses.replace(record(), headers=[])
    event = as_event(broken)
    assert event["type"] is None and "not a CloudEvent" in event["undecodable"]


def test_filters_by_type_order_and_time() -> None:
    event = as_event(record())
    assert TapFilter().admits(event)
    assert TapFilter(types={"com.mariospizzeria.order.cooking_started.v1"}).admits(event)
    assert not TapFilter(types={"com.mariospizzeria.order.placed.v1"}).admits(event)
    assert TapFilter(key_field="order_id", keys={"o-1", "o-2"}).admits(event)
    assert not TapFilter(key_field="order_id", keys={"o-2"}).admits(event)
    assert TapFilter(since=WHEN, until=WHEN + timedelta(seconds=1)).admits(event)
    assert not TapFilter(since=WHEN + timedelta(seconds=1)).admits(event)
    assert not TapFilter(until=WHEN).admits(event)


def test_the_contacts_topic_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    check_topics(["pizzeria.orders", "pizzeria.kitchen"], TOPOLOGY.restricted)
    with pytest.raises(RestrictedTopicError, match="personal data"):
        check_topics(["pizzeria.orders", "pizzeria.customer-contacts"], TOPOLOGY.restricted)
    with pytest.raises(RestrictedTopicError, match="personal data"):
        check_topics(
            ["pizzeria.customer-contacts.deadletter"], TOPOLOGY.restricted
        )  # its records, dead-lettered
    assert main(["tap", "--topic", "pizzeria.customer-contacts"]) == 2
    assert "personal data" in capsys.readouterr().err
    # Its dead letters are contact records too.
    assert main(["tap", "--topic", "pizzeria.customer-contacts.deadletter"]) == 2
    assert "personal data" in capsys.readouterr().err


def test_times_without_an_offset_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["tap", "--since", "2026-03-01T18:00"])
