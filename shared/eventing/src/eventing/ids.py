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
    unix_ms = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((random_bits >> 64) & 0x0FFF) << 64  # 12 random bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= random_bits & ((1 << 62) - 1)
    return uuid.UUID(int=value)
