"""Hostile records meet the decoder: every one is refused with a short, readable reason.

The kinds are those the consumers met on a running stack (and the e2e test puts on the orders
topic): nesting 100,000 levels deep in both content modes, values near the broker's limit,
invalid UTF-8 anywhere, headers without values, junk of every sort.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.catalogue import OrderPlaced
from eventing.cloudevents_kafka import (
    DEFAULT_LIMITS,
    DecodeLimits,
    Envelope,
    decode,
    encode,
    json_nesting_exceeds,
)
from eventing.errors import REASON_MAX_CHARS, UndecodableRecord
from eventing.events import model_for
from tests.support.eventing import order_placed
from tests.support.hostile import DEEP, as_read, hostile_records

Headers = list[tuple[str, bytes | None]]
MARKER = b"VALUE-MARKER-" + uuid.uuid4().hex.encode()  # never to be seen in a reason


def valid(order_id: str = "order-h") -> tuple[bytes | None, bytes, Headers]:
    record = encode(
        Envelope(
            id=str(uuid.uuid4()),
            type=OrderPlaced.event_type,
            source="/test",
            subject=order_id,
            partition_key=order_id,
            data=order_placed(order_id).model_dump(mode="json"),
        )
    )
    return record.key, record.value, list(record.headers)


def binary_headers() -> Headers:
    return valid()[2]


STRUCTURED: Headers = [("content-type", b"application/cloudevents+json")]


def structured(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + MARKER.join([b'"', b'"']) + b"]" * depth


# Kinds of hostile record beyond the shared list (tests/support/hostile.py).
MORE_HOSTILE: dict[str, tuple[bytes | None, bytes | None, Headers, str]] = {
    "a content-type header without a value": (
        b"k",
        valid()[1],
        [*binary_headers(), ("content-type", None)],
        "header 'content-type' has no value",
    ),
    "structured, specversion 0.3": (
        b"k",
        structured({"id": "1", "source": "/s", "type": "t", "specversion": "0.3", "data": {}}),
        STRUCTURED,
        "unsupported specversion '0.3'",
    ),
    "a key that is not UTF-8": (b"\xff", valid()[1], binary_headers(), "record key is not valid"),
    "a ce_ header value that is not UTF-8": (
        b"k",
        valid()[1],
        [(n, b"\xff" + MARKER if n == "ce_source" else v) for n, v in binary_headers()],
        "header 'ce_source' is not valid UTF-8",
    ),
    "a time that is no time": (
        b"k",
        valid()[1],
        [*binary_headers(), ("ce_time", b"yesterday" + MARKER)],
        "invalid CloudEvent",
    ),
    "data that is not an object": (b"k", b"[1, 2, 3]", binary_headers(), "must be a JSON object"),
    "a content type that is not JSON": (
        b"k",
        valid()[1],
        [*binary_headers(), ("content-type", b"text/plain")],
        "content-type 'text/plain' is not JSON",
    ),
    "a value that quotes its marker": (b"k", MARKER + b"{", binary_headers(), "not JSON"),
}
# The shared kinds that decode refuses (an unknown type and schema-invalid data decode: the
# runtime refuses them after looking the type up and validating).
SHARED = {
    hostile.name: (*as_read(hostile.record), hostile.reason)
    for hostile in hostile_records("unit")
    if hostile.name not in ("an unknown type", "schema-invalid data")
}
HOSTILE = {**SHARED, **MORE_HOSTILE}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_each_hostile_record_is_refused_with_a_short_reason_that_quotes_no_value(
    kind: str,
) -> None:
    key, value, headers, expected = HOSTILE[kind]
    with pytest.raises(UndecodableRecord) as refused:
        decode(key, value, headers)
    reason = refused.value.reason
    assert expected in reason
    assert len(reason) <= REASON_MAX_CHARS and reason.isprintable()
    assert "VALUE-MARKER" not in reason
    shown = (value or b"").decode(errors="ignore")[:24]
    assert len(shown) < 8 or shown not in reason


def test_unknown_types_and_schema_invalid_data_decode_and_are_refused_later() -> None:
    key, value, headers = valid()
    unknown = [(n, b"com.example.nope.v1" if n == "ce_type" else v) for n, v in headers]
    assert model_for(decode(key, value, unknown).type) is None
    envelope = decode(key, json.dumps({"order_id": "x", "total": "lots"}).encode(), headers)
    with pytest.raises(ValidationError, match="total"):
        OrderPlaced.model_validate(envelope.data)


def test_junk_headers_of_other_names_are_ignored_and_the_event_applies() -> None:
    key, value, headers = valid()
    envelope = decode(
        key,
        value,
        [*headers, ("\ufffd\ufffd", b"x"), ("x-empty", None), ("x-binary", b"\xff\xfe")],
    )
    assert OrderPlaced.model_validate(envelope.data).order_id == "order-h"


def test_the_limits_are_settings() -> None:
    key, value, headers = HOSTILE["a 700 KB value"][:3]
    assert decode(key, value, headers, DecodeLimits(max_record_bytes=800_000)).data["pad"]
    deep = b'{"x": ' + nested(40) + b"}"
    assert decode(b"k", deep, binary_headers(), DecodeLimits(max_json_depth=50)).data
    with pytest.raises(UndecodableRecord, match="deeper than 32"):
        decode(b"k", deep, binary_headers())


def test_a_recursion_error_inside_the_parser_is_a_reason_too() -> None:
    # With the depth check out of the way, json.loads itself recurses until Python stops it.
    too_deep = DecodeLimits(max_json_depth=10 * DEEP)
    with pytest.raises(UndecodableRecord, match="nested too deeply to decode"):
        decode(b"k", b'{"x": ' + nested(DEEP) + b"}", binary_headers(), too_deep)


def test_a_memory_error_while_parsing_is_a_reason_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(json, "loads", out_of_memory)
    with pytest.raises(UndecodableRecord, match="too large to decode in memory"):
        decode(*valid())


def depth(value: Any) -> int:
    """Nesting depth of parsed JSON, computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend(
                (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def random_json(rng: random.Random, budget: int) -> Any:
    kind = rng.random()
    if budget <= 0 or kind < 0.3:
        return rng.choice(['[{"', "}]", '\\"[', "x", "]]]", 1, None, "\\\\"])
    if kind < 0.65:
        return [random_json(rng, budget - 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}[": random_json(rng, budget - 1) for i in range(rng.randint(0, 3))}


def test_the_depth_check_agrees_with_the_parsed_depth() -> None:
    rng = random.Random(14)
    for _ in range(2000):
        document = random_json(rng, rng.randint(0, 12))
        text = json.dumps(document).encode()
        for limit in (1, 3, 5, 8):
            assert json_nesting_exceeds(text, limit) == (depth(document) > limit), text


def test_the_depth_check_on_what_is_not_json() -> None:
    assert json_nesting_exceeds(b"[" * 40, 32)  # never closed: a parser would still descend
    assert not json_nesting_exceeds(b"]" * 40, 32)
    assert not json_nesting_exceeds(b'{"a": "' + b"[" * 40 + b'"}', 32)  # brackets in a string
    assert DEFAULT_LIMITS.max_json_depth == 32
