"""The Kafka topics of the system, created explicitly (the broker never auto-creates)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    description: str
    config: dict[str, str] = field(default_factory=dict)


ORDERS = TopicSpec(
    "pizzeria.orders",
    partitions=6,
    description="Order lifecycle events, keyed by order id. No personal data.",
)
KITCHEN = TopicSpec(
    "pizzeria.kitchen",
    partitions=6,
    description="Kitchen ticket events, keyed by order id. No personal data.",
)
MENU = TopicSpec(
    "pizzeria.menu",
    partitions=1,
    description="Menu changes, keyed by pizza name.",
)
CUSTOMER_CONTACTS = TopicSpec(
    "pizzeria.customer-contacts",
    partitions=3,
    description="Restricted: customers' contact details keyed by customer id; tombstones erase.",
    # Erasure must not wait for the default 7-day segment roll: segments close hourly and are
    # compacted soon after, and tombstones themselves go after a day.
    config={
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "0",
        "segment.ms": "3600000",
        "min.cleanable.dirty.ratio": "0.1",
        "delete.retention.ms": "86400000",
    },
)
DEAD_LETTERS = TopicSpec(
    "pizzeria.deadletter",
    partitions=3,
    description="Records a consumer could not process, with the reason and original headers.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (ORDERS, KITCHEN, MENU, CUSTOMER_CONTACTS, DEAD_LETTERS)
