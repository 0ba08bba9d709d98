"""The time range every analytics question is asked over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True)
class Window:
    """Orders placed in ``[since, until)``; an open end is unbounded. Times are aware (UTC).

    ``since`` not earlier than ``until`` is an empty interval, not a mistake: no order was
    placed in it, and every answer over it is zero (or none).
    """

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name, value in (("from", self.since), ("to", self.until)):
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"'{name}' must carry a UTC offset (e.g. 2026-01-31T18:00:00Z)")
