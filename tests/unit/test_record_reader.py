"""The lenient record reader on crafted record batches: what aiokafka refuses is read anyway.

The batches are written byte by byte (tests/support/raw_batches.py), compressed and not, and
read the way aiokafka's fetcher reads them (its PartitionRecords over our MemoryRecords).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher
from aiokafka.record.memory_records import MemoryRecords

from eventing.cloudevents_kafka import decode
from eventing.errors import UndecodableRecord, UnreadableBatch
from eventing.record_reader import (
    UNREADABLE_BATCH_HEADER,
    LenientMemoryRecords,
    install,
    new_consumer,
    parse_record_batch,
)
from tests.support.raw_batches import GZIP, RawRecord, record_batch

TP = TopicPartition("pizzeria.orders", 0)
GOOD = RawRecord(b"order-1", b'{"a": 1}', [(b"ce_id", b"e-1"), (b"traceparent", None)])
JUNK_NAME = RawRecord(b"order-2", b"hello", [(b"ce_\xff\xfe", b"x"), (b"ce_specversion", b"1.0")])
AFTER = RawRecord(None, b"after", [])


def read_as_the_fetcher_does(records: Any, fetch_offset: int = 0) -> list[Any]:
    """Every ConsumerRecord aiokafka's fetcher would return for these fetched bytes."""
    partition_records = fetcher.PartitionRecords(
        TP, records, [], fetch_offset, None, None, True, fetcher.READ_COMMITTED
    )
    return list(partition_records)


def coordinates(records: list[Any]) -> list[tuple[int, bytes | None, bytes | None, Any]]:
    return [(r.offset, r.key, r.value, tuple(r.headers)) for r in records]


@pytest.mark.parametrize("compression", [0, GZIP], ids=["uncompressed", "gzip"])
def test_a_batch_is_parsed_record_by_record_with_header_names_decoded_leniently(
    compression: int,
) -> None:
    batch = record_batch([GOOD, JUNK_NAME, AFTER], compression=compression, base_offset=40)
    parsed = parse_record_batch(batch)
    assert [(r.offset, r.key, r.value, r.headers) for r in parsed] == [
        (40, b"order-1", b'{"a": 1}', [("ce_id", b"e-1"), ("traceparent", None)]),
        (41, b"order-2", b"hello", [("ce_\ufffd\ufffd", b"x"), ("ce_specversion", b"1.0")]),
        (42, None, b"after", []),
    ]
    assert {r.timestamp_type for r in parsed} == {0}


@pytest.mark.parametrize("compression", [0, GZIP], ids=["uncompressed", "gzip"])
def test_aiokafka_alone_fails_on_the_batch_the_lenient_reader_reads(compression: int) -> None:
    fetched = record_batch([GOOD], base_offset=0) + record_batch(
        [GOOD, JUNK_NAME, AFTER], compression=compression, base_offset=1
    )
    with pytest.raises(UnicodeDecodeError):
        read_as_the_fetcher_does(MemoryRecords(fetched))
    read = read_as_the_fetcher_does(LenientMemoryRecords(fetched))
    # Each offset once: offset 1, which aiokafka had already returned before it failed on 2, is
    # not repeated by the second reading of that batch.
    assert [r.offset for r in read] == [0, 1, 2, 3]
    assert coordinates(read)[2] == (
        2,
        b"order-2",
        b"hello",
        (("ce_\ufffd\ufffd", b"x"), ("ce_specversion", b"1.0")),
    )
    # The runtime then refuses it for its junk ce_ header, with a reason.
    with pytest.raises(UndecodableRecord) as refused:
        decode(read[2].key, read[2].value, list(read[2].headers))
    assert "does not name a CloudEvents attribute" in refused.value.reason


def test_records_before_the_fetch_position_are_not_returned_again() -> None:
    fetched = record_batch([GOOD, JUNK_NAME, AFTER], base_offset=10)
    read = read_as_the_fetcher_does(LenientMemoryRecords(fetched), fetch_offset=12)
    assert [r.offset for r in read] == [12]


def test_readable_batches_go_through_aiokafka_unchanged() -> None:
    fetched = record_batch([GOOD, AFTER], base_offset=5) + record_batch([GOOD], base_offset=7)
    assert coordinates(read_as_the_fetcher_does(LenientMemoryRecords(fetched))) == coordinates(
        read_as_the_fetcher_does(MemoryRecords(fetched))
    )


def test_a_batch_nobody_can_read_becomes_one_record_that_says_why() -> None:
    # The header promises a third record that is not there: aiokafka fails on the second one's
    # header name, and the second reading on the missing third.
    broken = record_batch([GOOD, JUNK_NAME], base_offset=1, claimed_count=3)
    fetched = record_batch([GOOD], base_offset=0) + broken
    with pytest.raises(UnreadableBatch):
        parse_record_batch(broken)
    read = read_as_the_fetcher_does(LenientMemoryRecords(fetched))
    assert [r.offset for r in read] == [0, 1, 2]
    placeholder = read[2]
    assert (placeholder.key, placeholder.value) == (None, broken)
    assert [name for name, _ in placeholder.headers] == [UNREADABLE_BATCH_HEADER]
    with pytest.raises(UndecodableRecord) as refused:
        decode(placeholder.key, placeholder.value, list(placeholder.headers))
    assert refused.value.reason.startswith("offsets 2..2 of a record batch could not be read")


async def test_every_new_consumer_installs_the_lenient_reader_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetcher, "MemoryRecords", MemoryRecords)
    new_consumer(bootstrap_servers="127.0.0.1:1")
    assert fetcher.MemoryRecords is LenientMemoryRecords
    install()  # idempotent
    assert fetcher.MemoryRecords is LenientMemoryRecords
