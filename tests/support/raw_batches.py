"""Record batches written byte by byte, for records no ordinary client would produce.

aiokafka's producer encodes header names as UTF-8, so it cannot write a header name that is not
UTF-8 (kcat can, but it is not installed everywhere the tests run). ``record_batch`` writes a
record batch v2 from the Kafka protocol's description, with header names given as bytes, and
``produce_batch`` sends it to a partition with one plain Produce request.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.codec import gzip_encode
from aiokafka.errors import for_code
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c

from eventing.kafka_security import KafkaSecurity

GZIP = 1
_NO_PRODUCER = -1
# From the partition leader epoch on; the CRC covers everything after its own field.
_AFTER_LENGTH = struct.Struct(">ib")
_AFTER_CRC = struct.Struct(">hiqqqhii")


@dataclass(frozen=True)
class RawRecord:
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[bytes, bytes | None]] = field(default_factory=tuple)


def _varint(number: int) -> bytes:
    zigzag = (number << 1) ^ (number >> 63)
    out = bytearray()
    while True:
        low = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _sized(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def _record(offset_delta: int, record: RawRecord) -> bytes:
    body = b"".join(
        [
            b"\x00",  # attributes
            _varint(0),  # timestamp delta
            _varint(offset_delta),
            _sized(record.key),
            _sized(record.value),
            _varint(len(record.headers)),
            *(_varint(len(name)) + name + _sized(value) for name, value in record.headers),
        ]
    )
    return _varint(len(body)) + body


def record_batch(
    records: Sequence[RawRecord],
    *,
    compression: int = 0,
    base_offset: int = 0,
    claimed_count: int | None = None,
) -> bytes:
    """A record batch v2 (to produce, base offset 0: the broker assigns the real offsets).

    ``claimed_count`` writes a wrong record count into the header: a broken batch.
    """
    now = int(time.time() * 1000)
    payload = b"".join(_record(delta, record) for delta, record in enumerate(records))
    if compression == GZIP:
        payload = gzip_encode(payload)
    elif compression:
        raise ValueError(f"compression {compression} is not written here")
    after_crc = (
        _AFTER_CRC.pack(
            compression,  # attributes: the compression codec, create time, not transactional
            len(records) - 1,  # last offset delta
            now,  # base timestamp
            now,  # max timestamp
            _NO_PRODUCER,
            -1,  # producer epoch
            -1,  # base sequence
            len(records) if claimed_count is None else claimed_count,
        )
        + payload
    )
    crc = struct.pack(">I", calc_crc32c(after_crc))
    after_length = _AFTER_LENGTH.pack(-1, 2) + crc + after_crc  # leader epoch, magic 2
    return struct.pack(">qi", base_offset, len(after_length)) + after_length


async def produce_batch(bootstrap: str, topic: str, partition: int, batch: bytes) -> None:
    """Append ``batch`` to ``topic``[``partition``] (acks=all); raises the broker's error."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, **KafkaSecurity().client_options())
    await client.bootstrap()
    try:
        await client._wait_on_metadata(topic)
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        request = ProduceRequest(
            transactional_id=None,
            required_acks=-1,
            timeout=10_000,
            topics=[(topic, [(partition, batch)])],
        )
        response = await client.send(leader, request)
        for _, partitions in response.topics:
            for partition_response in partitions:
                error = for_code(partition_response[1])
                if error.errno != 0:
                    raise error()
    finally:
        await client.close()
