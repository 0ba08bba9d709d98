"""Time-ordered identifiers (UUID version 7, RFC 9562) for event ids.

Python 3.11 has no ``uuid.uuid7``; ids that sort by creation time keep the outbox index and the
inbox table compact, and make event ids readable in logs in the order they happened.
"""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["uuid7"]


def uuid7() -> uuid.UUID:
    """A random UUID whose first 48 bits are the Unix time in milliseconds."""
    return uuid7_from(time.time_ns() // 1_000_000, os.urandom(10))


def uuid7_from(unix_ms: int, random: bytes) -> uuid.UUID:
    """The UUIDv7 of ``unix_ms`` whose 74 random bits come from the 10 bytes ``random``: the same
    inputs give the same id, for ids derived from what caused them."""
    if len(random) != 10:
        raise ValueError(f"a UUIDv7 takes 10 random bytes, not {len(random)}")
    random_bits = int.from_bytes(random, "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((random_bits >> 64) & 0x0FFF) << 64  # 12 random bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= random_bits & ((1 << 62) - 1)
    return uuid.UUID(int=value)
