"""The AsyncAPI 3.0 document of the event catalogue, and the JSON Schema of each type's data.

Everything here is derived from the code: the registered event types (``contracts.catalogue``),
the topics (``contracts.topics``), the CloudEvents Kafka binding (``eventing.cloudevents_kafka``)
and the dead-letter headers (``eventing.deadletter``). ``contracts.schemas.docs`` writes them to
``docs/``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Mapping, Sequence
from typing import Any

from contracts import catalogue
from contracts.topics import ALL_TOPICS, TOPOLOGY
from eventing.cloudevents_kafka import (
    AGGREGATE_VERSION,
    JSON_CONTENT_TYPE,
    PARTITIONKEY,
    SPEC_VERSION,
    TRACEPARENT,
)
from eventing.deadletter import (
    DLQ_PREFIX,
    HEADERS_TRUNCATED_HEADER,
    TRUNCATED_VALUE_BYTES,
    TRUNCATION_HEADERS,
    VALUE_BYTES_HEADER,
    VALUE_SHA256_HEADER,
    VALUE_TRUNCATED_HEADER,
    dead_letter_headers,
)
from eventing.events import EventData, event_types
from eventing.topics import TopicSpec

__all__ = [
    "ASYNCAPI_FILE",
    "EVENTS_DIRECTORY",
    "GENERATE_COMMAND",
    "asyncapi_document",
    "catalogue_types",
    "json_schema",
    "schema_id",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URL = "https://schemas.mariospizzeria.com/events/"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
PAYLOAD_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
EVENTS_DIRECTORY = "events"
ASYNCAPI_FILE = "asyncapi.json"
GENERATE_COMMAND = "uv run pizzeria schemas generate"

DEAD_LETTER_MESSAGE = "dead-letter"
_TRACEPARENT_PATTERN = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
_DECIMAL_PATTERN = "^-?[0-9]+$"
_DLQ_HEADER_DOCS: dict[str, dict[str, Any]] = {
    "dlq_reason": {"description": "Why the consumer could not process the record."},
    "dlq_group": {"description": "Consumer group of the consumer that gave up."},
    "dlq_handler": {"description": "Handler (or decoding step) that failed."},
    "dlq_topic": {"description": "Topic the record came from; replay produces it there again."},
    "dlq_partition": {
        "description": "Partition the record came from (decimal).",
        "pattern": _DECIMAL_PATTERN,
    },
    "dlq_offset": {
        "description": "Offset of the record in its partition (decimal).",
        "pattern": _DECIMAL_PATTERN,
    },
    "dlq_time": {
        "description": "When the record was dead-lettered (RFC 3339).",
        "format": "date-time",
    },
    VALUE_TRUNCATED_HEADER: {
        "description": 'Present ("true") on a truncated copy: the record was too large for '
        f"the dead-letter topic, so the value is only its first {TRUNCATED_VALUE_BYTES} bytes. "
        "A truncated copy cannot be replayed.",
        "const": "true",
    },
    VALUE_BYTES_HEADER: {
        "description": "On a truncated copy: the original value's size in bytes (decimal).",
        "pattern": _DECIMAL_PATTERN,
    },
    VALUE_SHA256_HEADER: {
        "description": "On a truncated copy: SHA-256 of the original value (hex).",
        "pattern": "^[0-9a-f]{64}$",
    },
    HEADERS_TRUNCATED_HEADER: {
        "description": 'Present ("true") when the original headers were cut short too.',
        "const": "true",
    },
}
# Kafka topic settings the AsyncAPI Kafka channel binding knows, with their JSON types.
_BINDING_TOPIC_CONFIG = {
    "cleanup.policy": "list",
    "retention.ms": "int",
    "retention.bytes": "int",
    "delete.retention.ms": "int",
    "max.message.bytes": "int",
}


# --------------------------------------------------------------------------- event data schemas


def catalogue_types() -> dict[str, type[EventData]]:
    """Every event type of the catalogue, sorted by name, after importing every catalogue module.

    Importing the whole ``contracts.catalogue`` package means a type declared in a new module is
    documented (and guarded) even before that module is re-exported from the package. Types
    registered from elsewhere (a test's own) are not the catalogue's and are left out.
    """
    for module in pkgutil.iter_modules(catalogue.__path__, f"{catalogue.__name__}."):
        importlib.import_module(module.name)
    return {
        event_type: model
        for event_type, model in sorted(event_types().items())
        if model.__module__.startswith(f"{catalogue.__name__}.")
    }


def schema_id(event_type: str) -> str:
    return f"{SCHEMA_BASE_URL}{event_type}.json"


def json_schema(model: type[EventData]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event type's data, as producers serialise it."""
    schema = model.model_json_schema(mode="serialization")
    document: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(model.event_type),
        **schema,
        "title": model.__name__,
        "x-cloudevents-type": model.event_type,
        "x-topic": model.topic,
        "x-aggregate": model.aggregate,
    }
    document.setdefault("description", f"Data of the {model.event_type} CloudEvent.")
    return document


# --------------------------------------------------------------------------- AsyncAPI document


def _summary(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _key_description(topic: TopicSpec, models: Sequence[type[EventData]]) -> str:
    aggregates = sorted({model.aggregate for model in models})
    if aggregates:
        return " or ".join(f"{aggregate} id" for aggregate in aggregates)
    if topic.name in TOPOLOGY.dead_letter_topics:
        return "the original record's key, unchanged"
    found = re.search(r"keyed by ([^.;,]+)", topic.description)
    return found.group(1).strip() if found else "partition key"


def _topic_configuration(config: Mapping[str, str]) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for name, value in config.items():
        kind = _BINDING_TOPIC_CONFIG.get(name)
        if kind == "list":
            known[name] = [part.strip() for part in value.split(",") if part.strip()]
        elif kind == "int":
            known[name] = int(value)
    return known


def _channel(
    topic: TopicSpec, models: Sequence[type[EventData]], message_ids: Sequence[str]
) -> dict[str, Any]:
    key = _key_description(topic, models)
    kafka: dict[str, Any] = {
        "topic": topic.name,
        "partitions": topic.partitions,
        "bindingVersion": KAFKA_BINDING_VERSION,
    }
    if topic.config:
        configuration = _topic_configuration(topic.config)
        if configuration:
            kafka["topicConfiguration"] = configuration
        kafka["x-topic-config"] = dict(topic.config)
    channel: dict[str, Any] = {
        "address": topic.name,
        "title": topic.name,
        "description": f"{topic.description} Record key: {key}.",
        "messages": {
            message_id: {"$ref": f"#/components/messages/{message_id}"}
            for message_id in message_ids
        },
        "bindings": {"kafka": kafka},
        "x-partitions": topic.partitions,
        "x-message-key": key,
    }
    if topic.dead_letters is not None:
        channel["x-dead-letter-topic"] = topic.dead_letters
    if topic.restricted:
        channel["tags"] = [
            {
                "name": "restricted",
                "description": "Personal data: access is restricted to the services that need "
                "it; never copy it to unrestricted topics or logs.",
            }
        ]
        channel["x-data-classification"] = "restricted"
        channel["x-personal-data"] = True
    return channel


def _cloudevents_headers(model: type[EventData]) -> dict[str, Any]:
    aggregate_id = f"The {model.aggregate} id (the aggregate id)"
    properties: dict[str, Any] = {
        "ce_id": {
            "type": "string",
            "format": "uuid",
            "description": "Event id (UUIDv7); consumers de-duplicate on it.",
        },
        "ce_source": {
            "type": "string",
            "format": "uri-reference",
            "description": "The producing service, e.g. /mariospizzeria/orders.",
        },
        "ce_type": {"type": "string", "const": model.event_type},
        "ce_specversion": {"type": "string", "const": SPEC_VERSION},
        "ce_time": {
            "type": "string",
            "format": "date-time",
            "description": "When the event was recorded (RFC 3339).",
        },
        "ce_subject": {"type": "string", "description": f"{aggregate_id}."},
        f"ce_{PARTITIONKEY}": {
            "type": "string",
            "description": f"{aggregate_id}; equal to the record key (partitionkey extension).",
        },
        f"ce_{TRACEPARENT}": {
            "type": "string",
            "pattern": _TRACEPARENT_PATTERN,
            "description": "W3C trace context of the request that caused the event "
            "(distributed tracing extension); absent when there was none.",
        },
        TRACEPARENT: {
            "type": "string",
            "pattern": _TRACEPARENT_PATTERN,
            "description": "W3C trace context of this hop: the relay's publish span, a child of "
            "ce_traceparent. Absent when the event has no ce_traceparent or the relay does not "
            "export traces; consumers then fall back to ce_traceparent.",
        },
        f"ce_{AGGREGATE_VERSION}": {
            "type": "string",
            "pattern": "^[1-9][0-9]*$",
            "description": "The aggregate's version after this event (1, 2, 3... per "
            f"{model.aggregate}); lets a consumer spot a gap or a repeat. Absent when the "
            "producer does not version the aggregate.",
        },
        "content-type": {
            "type": "string",
            "const": JSON_CONTENT_TYPE,
            "description": "Content type of the record value (the event data).",
        },
    }
    optional = {f"ce_{TRACEPARENT}", TRACEPARENT, f"ce_{AGGREGATE_VERSION}"}
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in binary content mode (Kafka protocol "
        "binding): each attribute is a ce_<name> header and the record value is the event data. "
        "Consumers also accept structured mode (content-type application/cloudevents+json).",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


def _event_message(model: type[EventData]) -> dict[str, Any]:
    description = model.model_json_schema(mode="serialization").get("description")
    message: dict[str, Any] = {
        "name": model.event_type,
        "title": model.__name__,
        "contentType": JSON_CONTENT_TYPE,
        "headers": _cloudevents_headers(model),
        "payload": {
            "schemaFormat": PAYLOAD_SCHEMA_FORMAT,
            "schema": {"$ref": f"{EVENTS_DIRECTORY}/{model.event_type}.json"},
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The {model.aggregate} id; also ce_subject and "
                    f"ce_{PARTITIONKEY}.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-cloudevents-type": model.event_type,
        "x-aggregate": model.aggregate,
        "x-dataschema": schema_id(model.event_type),
    }
    if isinstance(description, str) and description:
        message["summary"] = _summary(description)
        message["description"] = description
    return message


def _dead_letter_message() -> dict[str, Any]:
    names = [
        name
        for name, _ in dead_letter_headers(
            [], reason="", group="", handler="", topic="", partition=0, offset=0
        )
        if name.startswith(DLQ_PREFIX)
    ]
    properties = {
        name: {
            "type": "string",
            **_DLQ_HEADER_DOCS.get(name, {"description": f"Dead-letter metadata ({name})."}),
        }
        for name in [*names, *TRUNCATION_HEADERS]
    }
    restricted = "; ".join(
        f"{topic.name} to {topic.dead_letters}"
        for topic in ALL_TOPICS
        if topic.restricted and topic.dead_letters is not None
    )
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": "A record a consumer could not process, with the reason.",
        "description": "The original record's key, value and headers, unchanged, plus dlq_* "
        "headers saying why and where it came from. `pizzeria dead-letters replay` produces the "
        "original record to its original topic again. A record too large for the dead-letter "
        "topic is sent as a truncated copy (dlq_value_truncated), which cannot be replayed. "
        "Each topic names its dead-letter topic (x-dead-letter-topic): restricted topics have "
        f"restricted ones ({restricted}), so personal data never reaches an open topic.",
        "headers": {
            "type": "object",
            "properties": properties,
            "required": names,
            "additionalProperties": {
                "type": "string",
                "description": "The original record's headers (ce_*, content-type), unchanged.",
            },
        },
        "payload": {
            "description": "The original record's value, unchanged: usually a CloudEvent's JSON "
            "data, but possibly bytes that could not be decoded."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record's key, unchanged."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def asyncapi_document() -> dict[str, Any]:
    """One AsyncAPI 3.0 document describing every topic and every registered event type."""
    types = catalogue_types()
    topics = {topic.name: topic for topic in ALL_TOPICS}
    by_topic: dict[str, list[type[EventData]]] = {name: [] for name in topics}
    for event_type, model in types.items():
        if model.topic not in topics:
            raise ValueError(f"event type {event_type!r} names unknown topic {model.topic!r}")
        by_topic[model.topic].append(model)

    messages: dict[str, Any] = {
        event_type: _event_message(model) for event_type, model in types.items()
    }
    messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, topic in topics.items():
        models = by_topic[name]
        message_ids = [model.event_type for model in models]
        if name in TOPOLOGY.dead_letter_topics:
            message_ids.append(DEAD_LETTER_MESSAGE)
        channels[name] = _channel(topic, models, message_ids)
        for message_id in message_ids:
            dead = message_id == DEAD_LETTER_MESSAGE
            operations[f"send.{message_id}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{name}"},
                "title": f"Send {message_id}",
                "summary": "A consumer dead-letters a record it could not process."
                if dead
                else "The producing service's outbox relay publishes the event, in order per key.",
                "messages": [{"$ref": f"#/channels/{name}/messages/{message_id}"}],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Mario's Pizzeria events",
            "version": "1.0.0",
            "description": "Every Kafka topic of the system and every CloudEvents type on it. "
            "Events travel in CloudEvents binary content mode. Generated from contracts.catalogue "
            f"and contracts.topics by `{GENERATE_COMMAND}`: do not edit by hand.",
        },
        "defaultContentType": JSON_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
