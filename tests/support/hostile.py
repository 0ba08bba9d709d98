"""Hostile records: what anyone with write access to a topic can put there, and what it gets.

One list for the unit, integration and end-to-end tests. Each record is written byte by byte
(``tests.support.raw_batches``), so header names that are not UTF-8 and headers without a value
travel exactly as given. ``reason`` is a part of the dead letter's reason it must get.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from contracts.catalogue import OrderConfirmed
from eventing.cloudevents_kafka import Envelope, encode
from tests.support.raw_batches import RawRecord, produce_batch, record_batch

DEEP = 100_000
# The broker's message.max.bytes (Kafka's default; deploy/kafka/server.properties.template
# leaves it): the largest record batch it accepts.
BROKER_LIMIT = 1_048_588
_BATCH_OVERHEAD = 61 + 64  # the batch header, and room for the record's own framing
STRUCTURED: tuple[bytes, bytes | None] = (b"content-type", b"application/cloudevents+json")


@dataclass(frozen=True)
class Hostile:
    name: str
    record: RawRecord
    reason: str

    @property
    def key(self) -> bytes | None:
        return self.record.key


def event_headers(
    key: str, event_type: str = OrderConfirmed.event_type
) -> list[tuple[bytes, bytes | None]]:
    """The headers of a binary-mode CloudEvent of ``event_type`` about order ``key``."""
    encoded = encode(
        Envelope(id=str(uuid.uuid4()), type=event_type, source="/hostile", data={}, subject=key)
    )
    return [(name.encode(), value) for name, value in encoded.headers]


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _near_the_limit(key: bytes, headers: list[tuple[bytes, bytes | None]]) -> bytes:
    """A value that makes the record's batch just fit the broker's limit: any dead letter of
    it, the dlq_ headers added, is too large to send."""
    framing = len(key) + sum(len(name) + len(value or b"") for name, value in headers)
    return b'{"pad": "' + b"x" * (BROKER_LIMIT - _BATCH_OVERHEAD - framing - 12) + b'"}'


def hostile_records(tag: str) -> list[Hostile]:
    """One of each kind, keyed ``<tag>-<kind number>`` (a tombstone needs a key to be one)."""

    def key(number: int) -> bytes:
        return f"{tag}-{number:02d}".encode()

    def headers(number: int, **replaced: bytes | None) -> list[tuple[bytes, bytes | None]]:
        found = event_headers(key(number).decode())
        return [(n, replaced.get(n.decode(), v)) for n, v in found]

    structured_deep = (
        b'{"id": "1", "source": "/s", "type": "t", "specversion": "1.0", "data": '
        + _nested(DEEP)
        + b"}"
    )
    kinds = [
        ("100,000 levels deep, binary mode", b'{"a": ' + _nested(DEEP) + b"}", None, "deeper"),
        ("100,000 levels deep, structured mode", structured_deep, [STRUCTURED], "deeper"),
        ("just under the broker's limit", None, None, "is larger than the limit"),
        ("invalid UTF-8 in the value", b'{"order_id": "\xff\xfe"}', None, "not valid UTF-8"),
        ("an invalid UTF-8 header name", b"hello", "junk-name", "a CloudEvents attribute"),
        ("a header with a null value", b"{}", "null-subject", "'ce_subject' has no value"),
        ("not JSON", b"this is not json", None, "event data is not JSON"),
        ("no ce_ headers", b"{}", [(b"content-type", b"application/json")], "no ce_ headers"),
        ("specversion 0.3", b"{}", "spec-0.3", "unsupported ce_specversion '0.3'"),
        ("an unknown type", b"{}", "unknown-type", "unknown event type"),
        ("schema-invalid data", b'{"order_id": 7}', None, "schema-invalid"),
        ("a 700 KB value", b'{"pad": "' + b"y" * 700_000 + b'"}', None, "larger than the limit"),
        ("binary junk", bytes(range(256)) * 8, [], "not a CloudEvent"),
        (
            "structured mode without id and source",
            json.dumps({"type": "t", "specversion": "1.0", "data": {}}).encode(),
            [STRUCTURED],
            "missing required attribute(s): id, source",
        ),
        ("a tombstone (no value)", None, "tombstone", "no value (a tombstone)"),
    ]
    records: list[Hostile] = []
    for number, (name, value, special, reason) in enumerate(kinds):
        own: list[tuple[bytes, bytes | None]]
        if isinstance(special, list):
            own = list(special)
        elif special == "junk-name":
            own = [(b"ce_\xff\xfe", b"x"), *headers(number)]
        elif special == "null-subject":
            own = headers(number, ce_subject=None)
        elif special == "spec-0.3":
            own = headers(number, ce_specversion=b"0.3")
        elif special == "unknown-type":
            own = headers(number, ce_type=b"com.mariospizzeria.order.teleported.v1")
        else:
            own = headers(number)
        if name == "just under the broker's limit":
            value = _near_the_limit(key(number), own)
        records.append(Hostile(name, RawRecord(key(number), value, own), reason))
    return records


async def produce_hostile(
    bootstrap: str, topic: str, partition: int, records: list[RawRecord]
) -> None:
    """Each record as a batch of its own, in order, to one partition."""
    for record in records:
        await produce_batch(bootstrap, topic, partition, record_batch([record]))


def written(record: tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]) -> RawRecord:
    """A (key, value, headers) record as ``record_batch`` writes it (header names as bytes)."""
    key, value, headers = record
    return RawRecord(key, value, [(name.encode(), raw) for name, raw in headers])


def as_read(record: RawRecord) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]:
    """The record as a consumer gets it: header names decoded (leniently, as when aiokafka
    could not)."""
    headers = [(name.decode("utf-8", errors="replace"), value) for name, value in record.headers]
    return record.key, record.value, headers
