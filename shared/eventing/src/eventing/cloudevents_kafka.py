"""CloudEvents on Kafka (Kafka protocol binding 1.0), on top of the ``cloudevents`` SDK.

Binary content mode is what we produce by default: the record value is the JSON data, the
``content-type`` header is the data content type, and every other attribute travels as a
``ce_<name>`` header. Structured mode (``application/cloudevents+json``) is produced on request
and both modes are decoded, auto-detected from the headers. The record key is the partition key
(the aggregate's id), which is also carried as the ``partitionkey`` extension.

Decoding is the consumers' first contact with whatever anyone put on a topic, so ``decode``
treats every record as hostile: it refuses, with a readable reason and before parsing, a record
larger than ``DecodeLimits.max_record_bytes`` or JSON nested deeper than
``DecodeLimits.max_json_depth`` (checked without recursion), and it turns every other failure
(bad UTF-8, a header without a value, whatever the SDK raises) into ``UndecodableRecord``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from eventing.errors import UndecodableRecord, UnencodableEvent
from eventing.record_reader import UNREADABLE_BATCH_HEADER

__all__ = [
    "AGGREGATE_VERSION",
    "DEFAULT_LIMITS",
    "JSON_CONTENT_TYPE",
    "PARTITIONKEY",
    "SPEC_VERSION",
    "STRUCTURED_CONTENT_TYPE",
    "TRACEPARENT",
    "DecodeLimits",
    "Envelope",
    "KafkaRecord",
    "Mode",
    "decode",
    "encode",
    "json_nesting_exceeds",
]

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
TRACEPARENT = "traceparent"
PARTITIONKEY = "partitionkey"
# Extension: the aggregate's version after this event (1, 2, 3... per aggregate).
AGGREGATE_VERSION = "aggregateversion"
_CORE_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema"}
)
_REQUIRED = ("id", "source", "type")
_FORMAT = JSONFormat()
_SPEC_VERSION_BYTES = SPEC_VERSION.encode()
_JSON_CONTENT_TYPE_BYTES = JSON_CONTENT_TYPE.encode()
_EXTENSION_NAME = re.compile(r"[a-z0-9]+")
# Attribute names our events carry, known to be valid: no pattern match needed for them.
_KNOWN_ATTRIBUTES = frozenset({*_CORE_ATTRIBUTES, PARTITIONKEY, TRACEPARENT, AGGREGATE_VERSION})

Mode = Literal["binary", "structured"]


@dataclass(frozen=True)
class Envelope:
    """A CloudEvent whose data is a JSON object, as read from or written to Kafka."""

    id: str
    type: str
    source: str
    data: dict[str, Any]
    subject: str | None = None
    time: datetime | None = None
    partition_key: str | None = None
    traceparent: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KafkaRecord:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def _to_cloudevent(envelope: Envelope, data: bytes | dict[str, Any]) -> CloudEvent:
    attributes: dict[str, Any] = {
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "specversion": SPEC_VERSION,
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    if envelope.subject is not None:
        attributes["subject"] = envelope.subject
    if envelope.time is not None:
        attributes["time"] = envelope.time
    if envelope.partition_key is not None:
        attributes[PARTITIONKEY] = envelope.partition_key
    if envelope.traceparent is not None:
        attributes[TRACEPARENT] = envelope.traceparent
    attributes.update(envelope.extensions)
    return CloudEvent(attributes=attributes, data=data)


def _record(message: ce_kafka.KafkaMessage) -> KafkaRecord:
    key = message.key.encode() if isinstance(message.key, str) else message.key
    return KafkaRecord(key=key, value=message.value, headers=list(message.headers.items()))


def _binary_record(envelope: Envelope, data: bytes) -> KafkaRecord:
    """Binary content mode, written directly: the relay's hot path.

    Building the SDK's CloudEvent per record (validation of every attribute included) cost the
    relay a fifth of its CPU. This writes the same headers in the same order as the SDK's
    ``to_binary`` (a unit test holds the two equal) and keeps the checks that matter for
    events we produce ourselves: required attributes present, extension names valid.
    """
    for name in _REQUIRED:
        if not getattr(envelope, name):
            raise UnencodableEvent(f"CloudEvent attribute {name!r} must not be empty")
    headers = [
        ("ce_id", envelope.id.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_specversion", _SPEC_VERSION_BYTES),
        ("content-type", _JSON_CONTENT_TYPE_BYTES),
    ]
    if envelope.subject is not None:
        headers.append(("ce_subject", envelope.subject.encode()))
    if envelope.time is not None:
        headers.append(("ce_time", _format_time(envelope.time)))
    if envelope.partition_key is not None:
        headers.append(("ce_partitionkey", envelope.partition_key.encode()))
    if envelope.traceparent is not None:
        headers.append(("ce_traceparent", envelope.traceparent.encode()))
    for name, value in envelope.extensions.items():
        if not _EXTENSION_NAME.fullmatch(name) or name == "data":
            raise UnencodableEvent(f"invalid CloudEvent extension name {name!r}")
        headers.append((f"ce_{name}", str(value).encode()))
    key = envelope.partition_key.encode() if envelope.partition_key is not None else None
    return KafkaRecord(key=key, value=data, headers=headers)


def _format_time(moment: datetime) -> bytes:
    text = moment.isoformat()
    return (text[:-6] + "Z" if text.endswith("+00:00") else text).encode()


def encode(
    envelope: Envelope, *, mode: Mode = "binary", data_json: bytes | None = None
) -> KafkaRecord:
    """Encode an envelope as a Kafka record.

    ``data_json`` lets the relay pass the payload exactly as it is stored (already JSON) instead
    of serialising it again; otherwise ``envelope.data`` is serialised. Raises
    ``UnencodableEvent`` in binary mode when a required attribute (id, type, source) is empty or
    an extension name is not a CloudEvents attribute name.
    """
    if mode == "binary":
        return _binary_record(
            envelope, data_json if data_json is not None else json.dumps(envelope.data).encode()
        )
    payload = json.loads(data_json) if data_json is not None else envelope.data
    return _record(ce_kafka.to_structured(_to_cloudevent(envelope, payload), _FORMAT))


@dataclass(frozen=True)
class DecodeLimits:
    """What a record may cost to decode; beyond it, it is refused (a dead letter) unparsed.

    Our events are a few hundred bytes to a few kilobytes, nested three or four levels deep.
    """

    max_record_bytes: int = 262_144  # key + value + header names and values
    max_json_depth: int = 32  # arrays and objects inside one another


DEFAULT_LIMITS = DecodeLimits()

# What nesting depth is read from: quotes and brackets (one kind of bracket), nothing else.
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_CONTENT_TYPE = "content-type"
_JSON_MEDIA_TYPE = re.compile(r"^(application|text)/([a-z0-9.+-]*\+)?json(;.*)?$", re.IGNORECASE)


def json_nesting_exceeds(document: bytes, limit: int) -> bool:
    """True if the JSON ``document`` nests arrays and objects more than ``limit`` deep.

    json.loads recurses once per level, so a deep enough document raises RecursionError inside
    it, and anything walking the parsed data later would recurse as deep: this looks first,
    without recursion, in time linear in the size (times ``limit`` at worst), in C but for a
    loop of at most ``limit`` rounds. Not a validator: a document that is not JSON may pass, and
    json.loads then refuses it.
    """
    # Every level opens with a bracket, so few brackets mean a shallow document: the usual
    # case, two scans.
    if document.count(b"[") + document.count(b"{") <= limit:
        return False
    # Brackets inside strings nest nothing. Once escaped backslashes and escaped quotes are
    # gone, quotes pair up: strings without brackets are adjacent quotes once all else is
    # deleted, and only when some string holds brackets must the pieces be told apart.
    if b"\\" in document:
        document = document.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = document.translate(_SQUARE, _NOT_STRUCTURE)
    brackets = structure.replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(structure.split(b'"')[::2])
    # A run of openers is a chain of containers, each inside the one before.
    if b"[" * (limit + 1) in brackets:
        return True
    # Each round deletes the innermost containers ("[]"): one level of every branch.
    for level in range(limit):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            # Unbalanced (not JSON): a parser would descend through the openers left.
            return level + shorter.count(b"[") > limit
        brackets = shorter
    return b"[" in brackets


def _shown(text: object, limit: int = 80) -> str:
    """``repr`` of a value taken from a record, cut short: reasons stay readable and bounded."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _json_object(document: bytes, limits: DecodeLimits, what: str) -> dict[str, Any]:
    if json_nesting_exceeds(document, limits.max_json_depth):
        raise UndecodableRecord(f"{what} nests JSON deeper than {limits.max_json_depth} levels")
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UndecodableRecord(
            f"{what} is not JSON: not valid UTF-8 at byte {error.start}"
        ) from error
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise UndecodableRecord(f"{what} is not JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise UndecodableRecord(f"{what} must be a JSON object, got {type(parsed).__name__}")
    return parsed


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UndecodableRecord(f"{what} is not valid UTF-8 (byte {error.start})") from error


def decode(
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> Envelope:
    """Decode a Kafka record in binary or structured mode.

    Raises ``UndecodableRecord`` with a readable reason when the record is not a CloudEvent 1.0
    with a JSON object as data, and for any other failure to decode it, whatever the record
    holds (too large, nested too deep, not UTF-8, a header without a value...): a record can
    make this raise nothing else.
    """
    header_list = list(headers)
    try:
        return _decode(key, value, header_list, limits)
    except UndecodableRecord:
        raise
    except RecursionError as error:
        raise UndecodableRecord("nested too deeply to decode (RecursionError)") from error
    except MemoryError as error:
        raise UndecodableRecord("too large to decode in memory (MemoryError)") from error
    except Exception as error:  # whatever the SDK raises, the record is at fault
        raise UndecodableRecord(f"malformed record: {type(error).__name__}: {error}") from error


def _decode(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
    limits: DecodeLimits,
) -> Envelope:
    header_map: dict[str, bytes] = {}
    attribute_headers: dict[str, bytes] = {}  # ce_* and content-type: what the SDK reads
    size = len(key or b"") + len(value or b"")
    for name, raw in headers:
        lowered = name.lower()
        size += len(name)
        if lowered.startswith(ce_kafka.CE_PREFIX) or lowered == _CONTENT_TYPE:
            if raw is None:
                raise UndecodableRecord(f"header {_shown(name)} has no value")
            attribute_headers[lowered] = raw
        elif raw is None:
            continue  # a header of nobody's concern
        size += len(raw)
        header_map[lowered] = raw
    unreadable = header_map.get(UNREADABLE_BATCH_HEADER)
    if unreadable is not None:
        raise UndecodableRecord(unreadable.decode(errors="replace"))
    if size > limits.max_record_bytes:
        raise UndecodableRecord(
            f"record of {size} bytes is larger than the limit of {limits.max_record_bytes}"
        )
    if value is None:
        raise UndecodableRecord("no value (a tombstone) where a CloudEvent was expected")
    if key is not None:
        _text(key, "record key")
    if len(attribute_headers) > (_CONTENT_TYPE in attribute_headers):
        return _decode_binary(key, value, attribute_headers, limits)
    return _decode_structured(key, value, header_map, limits)


def _decode_binary(
    key: bytes | None, value: bytes, attribute_headers: dict[str, bytes], limits: DecodeLimits
) -> Envelope:
    for name in attribute_headers:
        attribute = name[len(ce_kafka.CE_PREFIX) :]
        if (
            attribute not in _KNOWN_ATTRIBUTES
            and name != _CONTENT_TYPE
            and not _EXTENSION_NAME.fullmatch(attribute)
        ):
            raise UndecodableRecord(
                f"header {_shown(name)} does not name a CloudEvents attribute (a-z, 0-9)"
            )
    specversion = attribute_headers.get("ce_specversion")
    if specversion is None:
        raise UndecodableRecord("missing ce_specversion header")
    if specversion != _SPEC_VERSION_BYTES:
        raise UndecodableRecord(
            f"unsupported ce_specversion {_shown(specversion.decode(errors='replace'))}; "
            f"expected {SPEC_VERSION!r}"
        )
    # The SDK invents an id when none is given; a record without one cannot be de-duplicated.
    missing = [f"ce_{name}" for name in _REQUIRED if not attribute_headers.get(f"ce_{name}")]
    if missing:
        raise UndecodableRecord(f"missing required header(s): {', '.join(missing)}")
    content_type = attribute_headers.get(_CONTENT_TYPE)
    if content_type is not None and content_type != _JSON_CONTENT_TYPE_BYTES:
        media_type = _text(content_type, "content-type header")
        if not _JSON_MEDIA_TYPE.match(media_type):
            raise UndecodableRecord(
                f"content-type {_shown(media_type)} is not JSON; event data must be a JSON object"
            )
    data = _json_object(value, limits, "event data")
    # The SDK checks and parses the attributes (the data was parsed once, above); it reads
    # every header it is given as UTF-8, so it gets only those that carry attributes.
    message = ce_kafka.KafkaMessage(headers=attribute_headers, key=key, value=b"")
    try:
        event = ce_kafka.from_binary(message, _FORMAT)
    except UnicodeDecodeError as error:
        for name, raw in attribute_headers.items():
            _text(raw, f"header {name!r}")  # raises, naming the header
        raise UndecodableRecord(f"a header is not valid UTF-8: {error}") from error
    except (BaseCloudEventException, ValueError) as error:
        raise UndecodableRecord(f"invalid CloudEvent: {error}") from error
    return _envelope(event, data)


def _decode_structured(
    key: bytes | None, value: bytes, header_map: dict[str, bytes], limits: DecodeLimits
) -> Envelope:
    content_type = header_map.get(_CONTENT_TYPE, b"")
    if not content_type.startswith(STRUCTURED_CONTENT_TYPE.encode()):
        raise UndecodableRecord(
            f"not a CloudEvent: no ce_ headers and content-type is not {STRUCTURED_CONTENT_TYPE!r}"
        )
    structured = _json_object(value, limits, "structured event")
    missing = [name for name in (*_REQUIRED, "specversion") if not structured.get(name)]
    if missing:
        raise UndecodableRecord(f"missing required attribute(s): {', '.join(missing)}")
    if structured["specversion"] != SPEC_VERSION:
        raise UndecodableRecord(
            f"unsupported specversion {_shown(structured['specversion'])}; "
            f"expected {SPEC_VERSION!r}"
        )
    message = ce_kafka.KafkaMessage(headers=header_map, key=key, value=value)
    try:
        event = ce_kafka.from_structured(message, _FORMAT)
    except (BaseCloudEventException, ValueError) as error:
        raise UndecodableRecord(f"invalid CloudEvent: {error}") from error
    data = event.get_data()
    if not isinstance(data, dict):
        raise UndecodableRecord(
            f"event data must be a JSON object, got {type(data).__name__} "
            f"with datacontenttype {_shown(event.get_attributes().get('datacontenttype'))}"
        )
    return _envelope(event, data)


def _envelope(event: BaseCloudEvent, data: dict[str, Any]) -> Envelope:
    attributes = event.get_attributes()
    extensions = {
        name: str(value)
        for name, value in attributes.items()
        if name not in _CORE_ATTRIBUTES and name not in (PARTITIONKEY, TRACEPARENT)
    }
    partition_key = attributes.get(PARTITIONKEY)
    traceparent = attributes.get(TRACEPARENT)
    return Envelope(
        id=event.get_id(),
        type=event.get_type(),
        source=event.get_source(),
        subject=event.get_subject(),
        time=event.get_time(),
        data=data,
        partition_key=str(partition_key) if partition_key is not None else None,
        traceparent=str(traceparent) if traceparent is not None else None,
        extensions=extensions,
    )
