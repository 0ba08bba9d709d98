"""Pure rules of the analytics projections: an order's status, on-time, percentiles.

Everything here is standard library only. The projections store one fact row per order whose
columns each event fills independently; the rules below derive what depends on several of them,
so the result never depends on the order the events were read in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    COOKING = "cooking"
    READY = "ready"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # only kitchen events seen so far: the order's own events are late


@dataclass(frozen=True)
class Milestones:
    """When an order reached each step, as far as the events read so far tell."""

    placed_at: datetime | None = None
    confirmed_at: datetime | None = None
    cooking_started_at: datetime | None = None
    ready_at: datetime | None = None
    departed_at: datetime | None = None
    delivered_at: datetime | None = None
    picked_up_at: datetime | None = None
    cancelled_at: datetime | None = None


# Which milestone makes which status, first match wins: a cancellation is terminal and wins,
# then the most advanced step reached. ``derive_status`` applies it here; the projection applies
# the same table in SQL, where an event's write meets the milestones already stored.
STATUS_PRECEDENCE: tuple[tuple[str, Status], ...] = (
    ("cancelled_at", Status.CANCELLED),
    ("delivered_at", Status.DELIVERED),
    ("picked_up_at", Status.PICKED_UP),
    ("departed_at", Status.OUT_FOR_DELIVERY),
    ("ready_at", Status.READY),
    ("cooking_started_at", Status.COOKING),
    ("confirmed_at", Status.CONFIRMED),
    ("placed_at", Status.PENDING),
)


def derive_status(steps: Milestones) -> Status:
    """The most advanced step reached; a cancellation or a hand-over is terminal and wins."""
    for milestone, status in STATUS_PRECEDENCE:
        if getattr(steps, milestone) is not None:
            return status
    return Status.UNKNOWN


def is_on_time(ready_at: datetime, estimated_ready_at: datetime | None) -> bool | None:
    """Ready no later than the kitchen's estimate; None when there was no estimate.

    Estimates are whole minutes rounded up, so no extra grace is given.
    """
    if estimated_ready_at is None:
        return None
    return ready_at <= estimated_ready_at


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile with linear interpolation between closest ranks.

    The same definition as PostgreSQL's ``percentile_cont``; None for no values.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return float(ordered[lower])
    weight = position - lower
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * weight)
