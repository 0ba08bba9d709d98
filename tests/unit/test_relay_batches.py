"""The relay's send step with a fake producer: a row that cannot become a record fails for good
(``UnencodableEvent`` is not retriable), its key's later rows wait, other keys go out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from eventing.relay import OutboxRelay, _Batch


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    async def send(
        self, topic: str, *, value: bytes | None, key: bytes | None, headers: Any
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, key))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def row(row_id: int, key: str, event_type: str = "test.relay.happened.v1") -> dict[str, Any]:
    return {
        "id": row_id,
        "event_id": uuid.uuid4(),
        "topic": "test.relay",
        "partition_key": key,
        "event_type": event_type,
        "source": "/test/relay",
        "subject": key,
        "payload": '{"n": 1}',
        "traceparent": None,
        "created_at": datetime.now(UTC),
        "attempts": 0,
        "aggregate_version": row_id,
    }


async def test_an_unencodable_row_fails_for_good_and_holds_back_its_key() -> None:
    producer = FakeProducer()
    relay = OutboxRelay("postgresql://unused", lambda: producer)
    relay._producer = producer
    batch = _Batch([row(1, "a", event_type=""), row(2, "a"), row(3, "b")])

    await relay._send_rows(batch)

    [failure] = batch.failures
    assert failure.row_id == 1
    assert failure.permanent
    assert failure.error == "cannot encode: CloudEvent attribute 'type' must not be empty"
    assert batch.held_back_keys == {"a"}
    assert producer.sent == [("test.relay", b"b")]
    assert [sent["id"] for sent, _ in batch.in_flight] == [3]
