"""Generated documentation of the event catalogue, and the backward-compatibility rules.

Everything here is derived from the code: the registered event types (``contracts.catalogue``),
the topics (``contracts.topics``), the CloudEvents Kafka binding (``eventing.cloudevents_kafka``)
and the dead-letter headers (``eventing.deadletter``). ``pizzeria schemas generate`` writes

    docs/events/<event type>.json   JSON Schema (draft 2020-12) of each type's data
    docs/asyncapi.json              one AsyncAPI 3.0 document: every topic and every event

and ``pizzeria schemas check`` (and a unit test) fails when the committed files drift from the
code. The files are rendered deterministically (sorted keys, two-space indent, trailing newline),
so regenerating an unchanged catalogue changes nothing. ``docs/events/`` belongs to the
generator: a ``.json`` file there without a registered event type is removed on generate.

``compatibility_problems`` holds the rules for changing a type *within* its version: fields may
be added if optional; removing a field, changing its type or allowed values, making an optional
field required or adding a required one needs a new type version (``...v2``).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
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
    """Every registered event type, sorted by name, after importing every catalogue module.

    Importing the whole ``contracts.catalogue`` package means a type declared in a new module is
    documented (and guarded) even before that module is re-exported from the package.
    """
    for module in pkgutil.iter_modules(catalogue.__path__, f"{catalogue.__name__}."):
        importlib.import_module(module.name)
    return dict(sorted(event_types().items()))


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


def is_restricted(topic: TopicSpec) -> bool:
    return topic.restricted


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
    if is_restricted(topic):
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


# --------------------------------------------------------------------------- files


def render(document: Mapping[str, Any]) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """The generated documentation: path relative to the docs directory -> content."""
    files = {
        f"{EVENTS_DIRECTORY}/{event_type}.json": render(json_schema(model))
        for event_type, model in catalogue_types().items()
    }
    files[ASYNCAPI_FILE] = render(asyncapi_document())
    return files


def _extra_files(directory: Path, expected: Mapping[str, str]) -> list[Path]:
    events = directory / EVENTS_DIRECTORY
    if not events.is_dir():
        return []
    return sorted(
        path for path in events.glob("*.json") if f"{EVENTS_DIRECTORY}/{path.name}" not in expected
    )


def write_docs(directory: Path) -> list[str]:
    """Write the generated documentation under ``directory``; return what changed.

    Files whose content is already right are left untouched; ``.json`` files in ``events/``
    without a registered event type are removed.
    """
    expected = generated_files()
    changes: list[str] = []
    for relative, content in expected.items():
        path = directory / relative
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8", newline="\n")
        changes.append(f"wrote {path.as_posix()}")
    for path in _extra_files(directory, expected):
        path.unlink()
        changes.append(f"removed {path.as_posix()}")
    return changes


def _first_difference(expected: str, actual: str) -> str:
    wanted, found = expected.splitlines(), actual.splitlines()
    for number, (line, other) in enumerate(zip(wanted, found, strict=False), start=1):
        if line != other:
            return f"line {number}: expected {line.strip()!r}, found {other.strip()!r}"
    if len(wanted) != len(found):
        return f"expected {len(wanted)} lines, found {len(found)}"
    return "whitespace or line endings differ"


def check_docs(directory: Path) -> list[str]:
    """Differences between the files under ``directory`` and the generated documentation."""
    expected = generated_files()
    differences: list[str] = []
    for relative, content in expected.items():
        path = directory / relative
        if not path.is_file():
            differences.append(f"missing {path.as_posix()}")
            continue
        actual = path.read_text(encoding="utf-8")
        if actual != content:
            differences.append(f"stale {path.as_posix()} ({_first_difference(content, actual)})")
    for path in _extra_files(directory, expected):
        differences.append(f"extra {path.as_posix()} (no registered event type {path.stem!r})")
    return differences


def default_docs_directory(start: Path | None = None) -> Path:
    """``docs/`` of the repository containing ``start`` (default: the working directory).

    The repository root is the nearest directory, ``start`` itself or one of its parents, whose
    ``pyproject.toml`` declares the uv workspace (``[tool.uv.workspace]``).
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        pyproject = candidate / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            settings = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if "workspace" in settings.get("tool", {}).get("uv", {}):
            return candidate / "docs"
    raise FileNotFoundError(
        f"no uv workspace root (pyproject.toml with [tool.uv.workspace]) at or above {here}"
    )


# --------------------------------------------------------------------------- compatibility

# Keywords that restrict valid values: changing one within a version breaks readers either way.
_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
_ENVELOPE_KEYS = (
    ("x-cloudevents-type", "CloudEvents type"),
    ("x-topic", "topic"),
    ("x-aggregate", "aggregate"),
)
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)

_Alternative = tuple[dict[str, Any], str | None]


def _json_type(value: Any) -> str:
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return "any"


def _where(path: str) -> str:
    return f"field '{path}'" if path else "the event data"


def _allowed_values(node: Mapping[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _label(node: Mapping[str, Any]) -> str:
    if "$ref" in node:
        return f"reference {node['$ref']}"
    kind = node.get("type")
    if kind is None:
        if "properties" in node or "additionalProperties" in node:
            kind = "object"
        elif "items" in node or "prefixItems" in node:
            kind = "array"
        else:
            values = _allowed_values(node)
            kinds = {_json_type(value) for value in values} if values else set()
            kind = kinds.pop() if len(kinds) == 1 else "any"
    if kind == "string" and isinstance(node.get("format"), str):
        return f"string ({node['format']})"
    return str(kind)


class _Comparison:
    """Walks an old and a new schema side by side, collecting incompatibilities."""

    def __init__(self, old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems: list[str] = []
        self._active: set[tuple[str, str]] = set()

    @staticmethod
    def _pointer(root: Mapping[str, Any], reference: str) -> dict[str, Any] | None:
        if not reference.startswith("#"):
            return None
        node: Any = root
        for part in reference[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return dict(node) if isinstance(node, Mapping) else None

    def _resolve(self, root: Mapping[str, Any], node: Mapping[str, Any]) -> _Alternative:
        """Follow local ``$ref``s and one-element ``allOf``s; siblings override the target."""
        current = dict(node)
        reference: str | None = None
        for _ in range(64):
            if isinstance(current.get("$ref"), str):
                target = self._pointer(root, current["$ref"])
                if target is None:
                    break
                reference = current.pop("$ref")
                current = {**target, **current}
            elif isinstance(current.get("allOf"), list) and len(current["allOf"]) == 1:
                (member,) = current.pop("allOf")
                current = {**dict(member), **current}
            else:
                break
        return current, reference

    def _alternatives(self, root: Mapping[str, Any], node: Mapping[str, Any]) -> list[_Alternative]:
        resolved, reference = self._resolve(root, node)
        for union in ("anyOf", "oneOf"):
            members = resolved.get(union)
            if isinstance(members, list):
                found: list[_Alternative] = []
                for member in members:
                    found.extend(self._alternatives(root, member))
                return found
        kinds = resolved.get("type")
        if isinstance(kinds, list):
            return [({**resolved, "type": kind}, reference) for kind in kinds]
        return [(resolved, reference)]

    def compare(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_alternatives = self._alternatives(self.old_root, old)
        new_alternatives = self._alternatives(self.new_root, new)
        old_labels = sorted({_label(node) for node, _ in old_alternatives})
        new_labels = sorted({_label(node) for node, _ in new_alternatives})
        if old_labels != new_labels:
            self.problems.append(
                f"{_where(path)} changed type from {' | '.join(old_labels)} "
                f"to {' | '.join(new_labels)}"
            )
            return
        for label in old_labels:
            olds = [item for item in old_alternatives if _label(item[0]) == label]
            news = [item for item in new_alternatives if _label(item[0]) == label]
            for old_item, new_item in self._pair(olds, news, path):
                self._compare_alternative(old_item, new_item, path)

    def _pair(
        self, olds: list[_Alternative], news: list[_Alternative], path: str
    ) -> list[tuple[_Alternative, _Alternative]]:
        if len(olds) == 1 and len(news) == 1:
            return [(olds[0], news[0])]
        old_titles = [node.get("title") for node, _ in olds]
        new_titles = [node.get("title") for node, _ in news]
        if len(set(old_titles)) == len(olds) and len(set(new_titles)) == len(news):
            pairs = []
            for old_item, title in zip(olds, old_titles, strict=True):
                if title in new_titles:
                    pairs.append((old_item, news[new_titles.index(title)]))
                else:
                    self.problems.append(f"{_where(path)} no longer accepts {title!r}")
            for title in new_titles:
                if title not in old_titles:
                    self.problems.append(f"{_where(path)} now also accepts {title!r}")
            return pairs
        if len(olds) != len(news):
            self.problems.append(
                f"{_where(path)} changed its union alternatives ({len(olds)} to {len(news)})"
            )
            return []
        return list(zip(olds, news, strict=True))

    def _compare_alternative(self, old: _Alternative, new: _Alternative, path: str) -> None:
        (old_node, old_ref), (new_node, new_ref) = old, new
        # The same pair of definitions inside itself (a recursive model): compared already.
        guard = (old_ref or "", new_ref or "")
        if old_ref is not None and new_ref is not None:
            if guard in self._active:
                return
            self._active.add(guard)
            try:
                self._compare_node(old_node, new_node, path)
            finally:
                self._active.discard(guard)
        else:
            self._compare_node(old_node, new_node, path)

    def _compare_node(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        where = _where(path)
        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if old_values is None and new_values is not None:
            self.problems.append(f"{where} is now restricted to the values {new_values!r}")
        elif old_values is not None and new_values is None:
            self.problems.append(f"{where} is no longer restricted to the values {old_values!r}")
        elif old_values is not None and new_values is not None:
            added = [value for value in new_values if value not in old_values]
            removed = [value for value in old_values if value not in new_values]
            if added or removed:
                self.problems.append(
                    f"{where} changed its allowed values (added {added!r}, removed {removed!r})"
                )
        for keyword in _CONSTRAINTS:
            if old.get(keyword) != new.get(keyword):
                self.problems.append(
                    f"{where} changed constraint {keyword} from {old.get(keyword)!r} "
                    f"to {new.get(keyword)!r}"
                )
        if _label(old) == "object":
            self._compare_object(old, new, path)
        elif _label(old) == "array":
            self._compare_array(old, new, path)

    def _compare_object(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_fields: Mapping[str, Any] = old.get("properties") or {}
        new_fields: Mapping[str, Any] = new.get("properties") or {}
        old_required = set(old.get("required") or ())
        new_required = set(new.get("required") or ())
        for name, old_field in old_fields.items():
            child = f"{path}.{name}" if path else name
            if name not in new_fields:
                self.problems.append(f"{_where(child)} was removed")
                continue
            if name not in old_required and name in new_required:
                self.problems.append(f"{_where(child)} was optional and is now required")
            self.compare(old_field, new_fields[name], child)
        for name in new_fields:
            if name not in old_fields and name in new_required:
                child = f"{path}.{name}" if path else name
                self.problems.append(
                    f"{_where(child)} was added as required (a new field must be optional)"
                )
        old_values, new_values = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_values, Mapping) and isinstance(new_values, Mapping):
            self.compare(old_values, new_values, f"{path}{{}}")
        elif isinstance(old_values, Mapping) != isinstance(new_values, Mapping):
            self.problems.append(f"{_where(path)} changed whether it is a map of values")

    def _compare_array(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            self.compare(old_items, new_items, f"{path}[]")
        elif isinstance(old_items, Mapping) != isinstance(new_items, Mapping):
            self.problems.append(f"{_where(path)} changed the type of its items")
        old_tuple, new_tuple = old.get("prefixItems"), new.get("prefixItems")
        if isinstance(old_tuple, list) and isinstance(new_tuple, list):
            if len(old_tuple) != len(new_tuple):
                self.problems.append(
                    f"{_where(path)} changed from {len(old_tuple)} to {len(new_tuple)} items"
                )
            for index, (old_item, new_item) in enumerate(zip(old_tuple, new_tuple, strict=False)):
                self.compare(old_item, new_item, f"{path}[{index}]")
        elif isinstance(old_tuple, list) != isinstance(new_tuple, list):
            self.problems.append(f"{_where(path)} changed between a list and a fixed-size tuple")


def compatibility_problems(old_schema: dict[str, Any], new_schema: dict[str, Any]) -> list[str]:
    """Why data of ``new_schema`` breaks readers of ``old_schema`` of the same type version.

    Backward compatibility within a version means that consumers written against either schema
    read events produced with the other: a field may be added only as optional. A removed field,
    a changed type (including format, nullability and allowed values), a changed constraint, an
    optional field made required and a new required field are problems. Nested objects, arrays,
    maps, unions and ``$ref``s (into each schema's own ``$defs``) are walked; descriptions,
    titles, examples and defaults are not compared. An empty list means compatible.
    """
    problems: list[str] = []
    for key, what in _ENVELOPE_KEYS:
        if key in old_schema and old_schema.get(key) != new_schema.get(key):
            problems.append(f"{what} changed from {old_schema[key]!r} to {new_schema.get(key)!r}")
    comparison = _Comparison(old_schema, new_schema)
    comparison.compare(old_schema, new_schema, "")
    return problems + comparison.problems
