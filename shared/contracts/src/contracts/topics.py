"""The pizzeria's Kafka topics, created explicitly (the broker never auto-creates).

Each topic names the topic its dead letters go to (``TopicSpec.dead_letters``): the consumer
runtime, the ``pizzeria dead-letters`` commands and the generated docs all read it from
``TOPOLOGY``.
A restricted topic (personal data) has a restricted dead-letter topic of its own, so a record
that could not be processed never carries personal data to the open ``pizzeria.deadletter``.
"""

from __future__ import annotations

from eventing.topics import TopicSpec, Topology

OPEN_DEAD_LETTERS = "pizzeria.deadletter"


ORDERS = TopicSpec(
    "pizzeria.orders",
    partitions=6,
    description="Order lifecycle events, keyed by order id. No personal data.",
    dead_letters=OPEN_DEAD_LETTERS,
)
KITCHEN = TopicSpec(
    "pizzeria.kitchen",
    partitions=6,
    description="Kitchen ticket events, keyed by order id. No personal data.",
    dead_letters=OPEN_DEAD_LETTERS,
)
MENU = TopicSpec(
    "pizzeria.menu",
    partitions=1,
    description="Menu changes, keyed by pizza name.",
    dead_letters=OPEN_DEAD_LETTERS,
)
# Erasure must not wait for the default 7-day segment roll: segments close hourly and are
# compacted soon after, and tombstones themselves go after a day.
_ERASABLE = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": "0",
    "segment.ms": "3600000",
    "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": "86400000",
}
CUSTOMER_CONTACTS_DEAD_LETTERS = TopicSpec(
    "pizzeria.customer-contacts.deadletter",
    partitions=3,
    description="Restricted: records of pizzeria.customer-contacts a consumer could not "
    "process, keyed by customer id, with the reason and original headers; compacted like the "
    "contacts topic, so a tombstone erases a customer here too.",
    config=dict(_ERASABLE),
    restricted=True,
)
CUSTOMER_CONTACTS = TopicSpec(
    "pizzeria.customer-contacts",
    partitions=3,
    description="Restricted: customers' contact details keyed by customer id; tombstones erase.",
    config=dict(_ERASABLE),
    dead_letters=CUSTOMER_CONTACTS_DEAD_LETTERS.name,
    restricted=True,
)
DEAD_LETTERS = TopicSpec(
    OPEN_DEAD_LETTERS,
    partitions=3,
    description="Records a consumer could not process, with the reason and original headers.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    ORDERS,
    KITCHEN,
    MENU,
    CUSTOMER_CONTACTS,
    DEAD_LETTERS,
    CUSTOMER_CONTACTS_DEAD_LETTERS,
)
TOPOLOGY = Topology(ALL_TOPICS, default_dead_letters=OPEN_DEAD_LETTERS)
