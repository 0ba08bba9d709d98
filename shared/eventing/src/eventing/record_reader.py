"""Kafka consumers that survive records aiokafka's own record reader cannot parse.

Why this exists: aiokafka decodes record header keys as strict UTF-8 while it iterates a fetched
record batch (in its C extension and in its pure-Python fallback alike). Kafka does not require
header keys to be UTF-8 (the broker stores them as bytes; the Java client decodes them with
replacement characters), so any producer can write a record that makes ``getmany()`` raise
``UnicodeDecodeError``. That record never reaches our code: every fetch of its partition fails on
the same batch, a consumer crash-loops behind it, and the tap and the dead-letter reader stop
there too.

What it does: ``new_consumer()`` creates an ``AIOKafkaConsumer`` after replacing the name
``MemoryRecords`` in aiokafka's fetcher module (the one place that turns fetched bytes into
batches; aiokafka has no hook for it) with ``LenientMemoryRecords``. That class still hands
every batch to aiokafka's reader, so the C extension stays the hot path; it only remembers where
each batch lies in the fetched bytes. Only when iterating a batch raises does it parse that one
batch again with ``parse_record_batch`` below, a small parser of the record batch v2 format of
the Kafka protocol written for this purpose, which decodes header keys with replacement
characters. Records aiokafka had already returned from that batch are skipped by offset. The
consumer runtime then treats the record like any other: a junk ``ce_`` header makes it
undecodable (a dead letter), a junk header of some other name is ignored.

A batch that this parser cannot read either becomes one placeholder record at the first offset
not yet returned: no key, the batch's raw bytes as its value, and the error in the
``UNREADABLE_BATCH_HEADER`` header, which ``cloudevents_kafka.decode`` refuses with that reason.
So even then the partition moves on with a dead letter; the records of such a batch cannot be
told apart, and the one dead letter stands for all of them (its reason names the offsets).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, codec
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.record.memory_records import MemoryRecords as AiokafkaMemoryRecords

from eventing.errors import UnreadableBatch

__all__ = [
    "UNREADABLE_BATCH_HEADER",
    "BatchRecord",
    "LenientMemoryRecords",
    "install",
    "new_consumer",
    "parse_record_batch",
]

log = logging.getLogger("eventing.record_reader")

UNREADABLE_BATCH_HEADER = "x-eventing-unreadable-batch"

# The record batch v2 header: baseOffset, batchLength, partitionLeaderEpoch, magic, crc,
# attributes, lastOffsetDelta, baseTimestamp, maxTimestamp, producerId, producerEpoch,
# baseSequence, and the number of records.
_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH = struct.Struct(">i")
_LENGTH_AT = 8  # batchLength follows the 8-byte baseOffset
_LOG_OVERHEAD = 12  # baseOffset and batchLength: the bytes batchLength does not count
_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_LOG_APPEND_TIME = 1
_MAX_VARINT_BYTES = 10
_DECOMPRESSORS: dict[int, tuple[str, Callable[[], bool], Callable[[bytes], bytes]]] = {
    1: ("gzip", codec.has_gzip, codec.gzip_decode),
    2: ("snappy", codec.has_snappy, codec.snappy_decode),
    3: ("lz4", codec.has_lz4, codec.lz4_decode),
    4: ("zstd", codec.has_zstd, codec.zstd_decode),
}


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One record, with the attributes aiokafka's fetcher reads from the records it iterates."""

    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    checksum: None = None


def _varint(buffer: bytes, position: int, end: int) -> tuple[int, int]:
    """A zig-zag encoded variable-length integer at ``position``; and the position after it."""
    raw = 0
    shift = 0
    for index in range(position, min(end, position + _MAX_VARINT_BYTES)):
        byte = buffer[index]
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), index + 1
        shift += 7
    raise UnreadableBatch(f"bad varint at byte {position}")


def _bytes(
    buffer: bytes, position: int, length: int, end: int, what: str
) -> tuple[bytes | None, int]:
    if length < 0:
        return None, position
    stop = position + length
    if stop > end:
        raise UnreadableBatch(f"{what} of {length} bytes runs past the end of its record")
    return buffer[position:stop], stop


def _record(
    records: bytes, position: int, base_offset: int, base_timestamp: int, log_append_time: int
) -> tuple[BatchRecord, int]:
    """The record at ``position`` of the (decompressed) records; and the position after it."""
    length, position = _varint(records, position, len(records))
    end = position + length
    if length < 1 or end > len(records):
        raise UnreadableBatch(f"record of {length} bytes at byte {position} does not fit")
    start = position
    position += 1  # record attributes: unused by the protocol so far
    timestamp_delta, position = _varint(records, position, end)
    offset_delta, position = _varint(records, position, end)
    key_length, position = _varint(records, position, end)
    key, position = _bytes(records, position, key_length, end, "key")
    value_length, position = _varint(records, position, end)
    value, position = _bytes(records, position, value_length, end, "value")
    header_count, position = _varint(records, position, end)
    if header_count < 0:
        raise UnreadableBatch(f"negative header count {header_count}")
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(header_count):
        name_length, position = _varint(records, position, end)
        if name_length < 0:
            raise UnreadableBatch("a header without a name")
        name, position = _bytes(records, position, name_length, end, "header name")
        header_value_length, position = _varint(records, position, end)
        header_value, position = _bytes(records, position, header_value_length, end, "header value")
        # The reason this parser exists: header names need not be UTF-8.
        headers.append(((name or b"").decode("utf-8", errors="replace"), header_value))
    if position != end:
        raise UnreadableBatch(f"record at byte {start} has {end - position} bytes left over")
    record = BatchRecord(
        offset=base_offset + offset_delta,
        timestamp=log_append_time if log_append_time >= 0 else base_timestamp + timestamp_delta,
        timestamp_type=_LOG_APPEND_TIME if log_append_time >= 0 else 0,
        key=key,
        value=value,
        headers=headers,
    )
    return record, end


def parse_record_batch(batch: bytes) -> list[BatchRecord]:
    """Every record of one record batch (magic 2), decompressed; header names decoded leniently.

    Raises ``UnreadableBatch`` when the bytes are not such a batch (or need a codec that is not
    installed). The CRC is not checked here: aiokafka checked it before iterating the batch.
    """
    if len(batch) < _BATCH_HEADER.size:
        raise UnreadableBatch(f"{len(batch)} bytes are too few for a record batch")
    (
        base_offset,
        batch_length,
        _leader_epoch,
        magic,
        _crc,
        attributes,
        _last_offset_delta,
        base_timestamp,
        max_timestamp,
        _producer_id,
        _producer_epoch,
        _base_sequence,
        count,
    ) = _BATCH_HEADER.unpack_from(batch)
    if magic != 2:
        raise UnreadableBatch(f"record batch format (magic) {magic} is not supported")
    if _LOG_OVERHEAD + batch_length != len(batch):
        raise UnreadableBatch(f"batch length {batch_length} does not match {len(batch)} bytes")
    records = batch[_BATCH_HEADER.size :]
    compression = attributes & _COMPRESSION_MASK
    if compression:
        if compression not in _DECOMPRESSORS:
            raise UnreadableBatch(f"unknown compression type {compression}")
        name, available, decompress = _DECOMPRESSORS[compression]
        if not available():
            raise UnreadableBatch(f"the {name} codec is not installed")
        try:
            records = decompress(records)
        except Exception as error:  # whatever the codec raises, the batch is bad
            raise UnreadableBatch(f"{name} decompression failed: {error!r}") from error
    log_append_time = max_timestamp if attributes & _TIMESTAMP_TYPE_BIT else -1
    parsed: list[BatchRecord] = []
    position = 0
    for _ in range(count):
        record, position = _record(records, position, base_offset, base_timestamp, log_append_time)
        parsed.append(record)
    if position != len(records):
        raise UnreadableBatch(f"{len(records) - position} bytes left after {count} records")
    return parsed


def _placeholder(batch: bytes, after: int, error: Exception) -> BatchRecord:
    """Stands for what could not be read of ``batch``: the first offset not yet returned on."""
    base_offset, last_delta = -1, 0
    if len(batch) >= _BATCH_HEADER.size:
        header = _BATCH_HEADER.unpack_from(batch)
        base_offset, last_delta = header[0], header[6]
    offset = max(after + 1, base_offset)
    reason = (
        f"offsets {offset}..{base_offset + last_delta} of a record batch could not be read "
        f"({error})"
    )
    return BatchRecord(
        offset=offset,
        timestamp=-1,
        timestamp_type=0,
        key=None,
        value=batch,
        headers=[(UNREADABLE_BATCH_HEADER, reason.encode())],
    )


class _GuardedBatch:
    """One of aiokafka's batches, and where it lies in the fetched bytes, for a second reading.

    Everything the fetcher asks of a batch goes to aiokafka's own object; only iterating it is
    wrapped, so that a record aiokafka cannot parse sends the batch to ``parse_record_batch``.
    """

    __slots__ = ("_batch", "_buffer", "_end", "_start")

    def __init__(self, batch: Any, buffer: bytes, start: int, end: int) -> None:
        self._batch = batch
        self._buffer = buffer
        self._start = start
        self._end = end

    # What the fetcher reads of a batch, passed on explicitly: falling back to __getattr__
    # would cost a failed lookup on every access.
    @property
    def base_offset(self) -> int:
        offset: int = self._batch.base_offset
        return offset

    @property
    def next_offset(self) -> int:
        offset: int = self._batch.next_offset
        return offset

    @property
    def producer_id(self) -> int:
        producer: int = self._batch.producer_id
        return producer

    @property
    def is_transactional(self) -> bool:
        transactional: bool = self._batch.is_transactional
        return transactional

    @property
    def is_control_batch(self) -> bool:
        control: bool = self._batch.is_control_batch
        return control

    def validate_crc(self) -> bool:
        valid: bool = self._batch.validate_crc()
        return valid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)  # anything else a later aiokafka may ask

    def __next__(self) -> Any:
        # The fetcher reads a control batch's one record with next(); those have no headers.
        return next(self._batch)

    def __iter__(self) -> Iterator[Any]:
        returned = -1
        try:
            for record in self._batch:
                returned = record.offset
                yield record
            return
        except Exception as error:  # noqa: BLE001 - aiokafka's failure sends us to the fallback
            failure = error
        batch = self._buffer[self._start : self._end]
        try:
            records = parse_record_batch(batch)
        except UnreadableBatch as error:
            log.error("a record batch neither aiokafka (%r) nor we could read: %s", failure, error)
            yield _placeholder(batch, returned, error)
            return
        log.warning(
            "aiokafka could not read a record batch (%r); read it leniently instead", failure
        )
        for record in records:
            if record.offset > returned:
                yield record


class LenientMemoryRecords:
    """aiokafka's ``MemoryRecords`` whose batches fall back to ``parse_record_batch``."""

    __slots__ = ("_buffer", "_position", "_records")

    def __init__(self, bytes_data: bytes) -> None:
        self._buffer = bytes_data
        self._records = AiokafkaMemoryRecords(bytes_data)
        self._position = 0

    def size_in_bytes(self) -> int:
        size: int = self._records.size_in_bytes()
        return size

    def has_next(self) -> bool:
        more: bool = self._records.has_next()
        return more

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        # aiokafka returns the batches in the order they lie in the buffer, each taking
        # _LOG_OVERHEAD + batchLength bytes; this follows along without parsing anything else.
        start = self._position
        (length,) = _LENGTH.unpack_from(self._buffer, start + _LENGTH_AT)
        self._position = start + _LOG_OVERHEAD + length
        return _GuardedBatch(batch, self._buffer, start, self._position)


def install() -> None:
    """Make aiokafka's fetcher build ``LenientMemoryRecords`` (idempotent, process-wide)."""
    current = getattr(aiokafka_fetcher, "MemoryRecords", None)
    if current is LenientMemoryRecords:
        return
    if current is not AiokafkaMemoryRecords:
        raise RuntimeError(
            "aiokafka's fetcher no longer builds MemoryRecords from fetched bytes by that name: "
            "eventing.record_reader must be adapted to this aiokafka version"
        )
    setattr(aiokafka_fetcher, "MemoryRecords", LenientMemoryRecords)  # noqa: B010


def new_consumer(*topics: str, **config: Any) -> AIOKafkaConsumer:
    """An ``AIOKafkaConsumer`` (same arguments) that reads past records aiokafka cannot parse.

    Every reader of the project creates its consumer here: the consumer runtime, the tap, the
    dead-letter reader, reconciliation and the tests' readers.
    """
    install()
    return AIOKafkaConsumer(*topics, **config)
