"""The kitchen's capacity and its estimated ready times. Standard library only.

Estimate model
==============

**Capacity.** The kitchen cooks at most ``capacity`` orders at once (default 3,
``KITCHEN_CAPACITY``): one order per station, and the oven is shared. Starting another order
while ``capacity`` are cooking is refused (``KitchenAtCapacity``).

**Cook time** of an order with *n* pizzas::

    cook_time(n) = base_minutes + minutes_per_pizza × n          (defaults: 6 + 2 × n)

The defaults describe a pizzeria oven: ``base_minutes`` = 6 is what every order costs whatever
its size — reading the ticket, one bake of about four to five minutes in a hot deck oven, cutting
and boxing. ``minutes_per_pizza`` = 2 is the work that grows with the order: a cook stretches,
tops and loads the pizzas one after another while the oven bakes them side by side, so an extra
pizza adds its preparation, not a whole bake. A single pizza takes 8 minutes, a family order of
four 14, and a 50-pizza party order (the orders API's maximum) 106 minutes on one station. Both
are settings (``KITCHEN_BASE_MINUTES``, ``KITCHEN_MINUTES_PER_PIZZA``) to calibrate against the
measured ``lateness_seconds`` of ready orders.

**Estimated ready times** come from simulating the queue on ``capacity`` slots at ``now``:

1. Each cooking order holds a slot until ``started_at + cook_time`` — or until ``now`` if that
   moment has passed (an overdue order is assumed to be nearly done, not to block forever).
   Free slots are free at ``now``. When more orders are cooking than ``capacity`` (the setting
   was lowered), only the ``capacity`` slots that free last count: no order starts until fewer
   than ``capacity`` are cooking.
2. Queued orders, first in first out (by confirmation time, then order id), each take the slot
   that frees earliest: ``start = that moment``, ``ready = start + cook_time``, and the slot is
   busy until ``ready``.
3. The estimate is ``ready`` rounded up to the whole minute: the precision a customer or a cook can
   use, and a promise rather than an optimistic guess. A cooking order's estimate is fixed when it
   starts, at ``started_at + cook_time`` (rounded up); its lateness is measured against it.

The service re-estimates the whole queue whenever it changes (a ticket queued, started, ready or
withdrawn) and stores the estimates on the tickets. A stored estimate is revised — and
``EstimateChanged`` published — only when its rounded value changes, i.e. by at least a minute,
so small shifts cause no event storm. Because every estimate is a function of the queue and
``now`` alone, re-applying the same events at the same kitchen time gives the same estimates.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)


class KitchenAtCapacity(Exception):
    """``capacity`` orders are cooking already: another one cannot start."""

    def __init__(self, capacity: int, cooking: int) -> None:
        super().__init__("kitchen at capacity")
        self.capacity = capacity
        self.cooking = cooking


@dataclass(frozen=True)
class CookingOrder:
    order_id: str
    pizzas: int
    started_at: datetime


@dataclass(frozen=True)
class QueuedOrder:
    order_id: str
    pizzas: int


@dataclass(frozen=True)
class Estimate:
    """When a queued order should start and be ready (exact), and the promised ready minute."""

    order_id: str
    starts_at: datetime
    ready_at: datetime

    @property
    def estimated_ready_at(self) -> datetime:
        return round_up_to_minute(self.ready_at)


@dataclass(frozen=True)
class Revision:
    """A stored estimate that moved: publish it as ``EstimateChanged``."""

    order_id: str
    previous: datetime
    estimated_ready_at: datetime


def round_up_to_minute(moment: datetime) -> datetime:
    floored = moment.replace(second=0, microsecond=0)
    return floored if floored == moment else floored + MINUTE


@dataclass(frozen=True)
class KitchenModel:
    """Capacity and cook times; see the module docstring for the model."""

    capacity: int = 3
    base_minutes: float = 6.0
    minutes_per_pizza: float = 2.0

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {self.capacity}")
        if not (math.isfinite(self.base_minutes) and self.base_minutes >= 0):
            raise ValueError(f"base_minutes must be 0 or more, got {self.base_minutes}")
        if not (math.isfinite(self.minutes_per_pizza) and self.minutes_per_pizza >= 0):
            raise ValueError(f"minutes_per_pizza must be 0 or more, got {self.minutes_per_pizza}")

    def cook_time(self, pizzas: int) -> timedelta:
        return timedelta(minutes=self.base_minutes + self.minutes_per_pizza * pizzas)

    def check_room(self, cooking: int) -> None:
        """Raise ``KitchenAtCapacity`` unless one more order may start while ``cooking`` cook."""
        if cooking >= self.capacity:
            raise KitchenAtCapacity(self.capacity, cooking)

    def ready_estimate(self, started_at: datetime, pizzas: int) -> datetime:
        """The estimate of an order that started cooking at ``started_at``."""
        return round_up_to_minute(started_at + self.cook_time(pizzas))

    def estimate(
        self, cooking: Iterable[CookingOrder], queued: Sequence[QueuedOrder], now: datetime
    ) -> list[Estimate]:
        """Estimates for ``queued`` (already in queue order), given what is cooking at ``now``."""
        busy_until = sorted(
            max(order.started_at + self.cook_time(order.pizzas), now) for order in cooking
        )
        slots = busy_until[-self.capacity :] if busy_until else []
        # Free slots beyond the queue's length are never used: a large capacity costs nothing.
        slots += [now] * max(0, min(self.capacity - len(slots), len(queued)))
        heapq.heapify(slots)
        estimates = []
        for order in queued:
            starts_at = heapq.heappop(slots)
            ready_at = starts_at + self.cook_time(order.pizzas)
            heapq.heappush(slots, ready_at)
            estimates.append(Estimate(order.order_id, starts_at, ready_at))
        return estimates


def revisions(
    stored: Mapping[str, datetime | None], estimates: Iterable[Estimate]
) -> list[Revision]:
    """The estimates whose stored (rounded) value moved; a first estimate is no revision."""
    changed = []
    for estimate in estimates:
        previous = stored.get(estimate.order_id)
        if previous is not None and previous != estimate.estimated_ready_at:
            changed.append(Revision(estimate.order_id, previous, estimate.estimated_ready_at))
    return changed
