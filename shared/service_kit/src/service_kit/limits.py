"""How much one client may ask of a service: request rates and long-lived streams.

* ``RateLimit``: a token bucket per key (a client address, a phone number): ``capacity``
  requests at once, refilled at ``capacity`` per ``period``. Written as ``"20/minute"``.
* ``StreamSlots``: at most ``capacity`` open streams (Server-Sent Events) per process.

Both are per process, kept in memory: a limit that costs a database round trip per request
would cost more than most of what it protects. With several processes behind one address the
limit applies to each, which the README says. The buckets are bounded (least recently used keys
are forgotten first), so a flood of distinct keys cannot exhaust memory; a forgotten key starts
again with a full bucket, which only favours the client it belonged to.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer
from pydantic_settings import NoDecode

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(second|minute|hour|day)\s*")


@dataclass(frozen=True)
class RateSpec:
    """``capacity`` requests per ``period_seconds``; ``capacity`` 0 means no limit."""

    capacity: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> RateSpec:
        if text.strip().lower() in ("0", "off", "none", ""):
            return cls(0, 1.0)
        match = _SPEC.fullmatch(text.lower())
        if match is None:
            raise ValueError(
                f"{text!r} is not a rate: write '<count>/<second|minute|hour|day>', or 'off'"
            )
        return cls(int(match[1]), PERIODS[match[2]])

    @property
    def unlimited(self) -> bool:
        return self.capacity == 0

    def __str__(self) -> str:
        if self.unlimited:
            return "off"
        unit = next(name for name, seconds in PERIODS.items() if seconds == self.period_seconds)
        return f"{self.capacity}/{unit}"


def _rate(value: Any) -> RateSpec:
    return value if isinstance(value, RateSpec) else RateSpec.parse(str(value))


# A settings field: ``ORDERS_PLACEMENTS_PER_CLIENT=20/minute`` (text, not JSON).
Rate = Annotated[RateSpec, NoDecode, BeforeValidator(_rate), PlainSerializer(str, return_type=str)]


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimit:
    """Token buckets by key. ``take(key)`` spends one token, or says how long to wait."""

    spec: RateSpec
    max_keys: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    def take(self, key: str) -> float | None:
        """None if ``key`` may go ahead (one token spent), else the seconds until it may."""
        if self.spec.unlimited:
            return None
        now = self.clock()
        rate = self.spec.capacity / self.spec.period_seconds
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.spec.capacity), now)
        else:
            bucket.tokens = min(
                float(self.spec.capacity), bucket.tokens + (now - bucket.updated) * rate
            )
            bucket.updated = now
        self._buckets[key] = bucket  # most recently used last
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def give_back(self, key: str) -> None:
        """Return the token a ``take(key)`` spent on something that did not happen after all."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(float(self.spec.capacity), bucket.tokens + 1.0)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, at least 1 (a client retrying at once would fail)."""
    return str(max(1, math.ceil(seconds)))


class StreamSlots:
    """At most ``capacity`` streams open at once (0: no limit)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.open = 0

    def acquire(self) -> bool:
        if self.capacity and self.open >= self.capacity:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1
