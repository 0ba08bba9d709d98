"""UUIDv7 event ids (eventing.ids): random ones, and ones fixed by a time and 10 bytes."""

from __future__ import annotations

import time

import pytest

from eventing.ids import uuid7, uuid7_from


def test_a_derived_id_is_a_uuid7_of_its_time_and_bytes() -> None:
    unix_ms = 1_795_000_000_123
    derived = uuid7_from(unix_ms, bytes(range(10)))
    assert (derived.version, derived.variant) == (7, "specified in RFC 4122")
    assert derived.int >> 80 == unix_ms
    assert derived == uuid7_from(unix_ms, bytes(range(10)))
    assert derived != uuid7_from(unix_ms, bytes(range(1, 11)))
    assert str(derived) == "01a1ee56-5e7b-7001-8203-040506070809"


def test_a_derived_id_takes_exactly_ten_bytes() -> None:
    with pytest.raises(ValueError, match="10 random bytes, not 9"):
        uuid7_from(0, bytes(9))


def test_random_ids_begin_with_the_time_and_differ() -> None:
    before = time.time_ns() // 1_000_000
    first, second = uuid7(), uuid7()
    after = time.time_ns() // 1_000_000
    assert first.version == second.version == 7
    assert before <= first.int >> 80 <= second.int >> 80 <= after
    assert first != second
