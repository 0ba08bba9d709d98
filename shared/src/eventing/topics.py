"""The Kafka topics of the system, created explicitly (the broker never auto-creates).

Each topic names the topic its dead letters go to (``TopicSpec.dead_letters``): the consumer
runtime, the ``eventing dead-letters`` commands and the generated docs all read it from here.
A restricted topic (personal data) has a restricted dead-letter topic of its own, so a record
that could not be processed never carries personal data to the open ``pizzeria.deadletter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPEN_DEAD_LETTERS = "pizzeria.deadletter"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    description: str
    config: dict[str, str] = field(default_factory=dict)
    # Where consumers dead-letter this topic's records; None for a dead-letter topic itself.
    dead_letters: str | None = OPEN_DEAD_LETTERS
    # Personal data: only the services authorised for it read it; the tap refuses it.
    restricted: bool = False

    @property
    def compacted(self) -> bool:
        """A compacted topic keeps the last record per key, so every record needs a key."""
        return "compact" in self.config.get("cleanup.policy", "")


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
    dead_letters=None,
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
    dead_letters=None,
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    ORDERS,
    KITCHEN,
    MENU,
    CUSTOMER_CONTACTS,
    DEAD_LETTERS,
    CUSTOMER_CONTACTS_DEAD_LETTERS,
)
RESTRICTED_TOPICS: frozenset[str] = frozenset(t.name for t in ALL_TOPICS if t.restricted)
DEAD_LETTER_TOPICS: frozenset[str] = frozenset(
    topic.dead_letters for topic in ALL_TOPICS if topic.dead_letters is not None
)


def topic_named(name: str) -> TopicSpec | None:
    return next((topic for topic in ALL_TOPICS if topic.name == name), None)


def dead_letter_topic_for(topic: str) -> str:
    """Where records of ``topic`` are dead-lettered.

    A topic whose name ends with a name of this list (the outbox's ``topic_prefix``: tests, a
    cluster shared by environments) is that topic, so a prefixed contacts topic's records go to
    the restricted dead-letter topic too. Any other topic's go to the open one.
    """
    for spec in sorted(ALL_TOPICS, key=lambda spec: len(spec.name), reverse=True):
        if topic.endswith(spec.name):
            return spec.dead_letters or OPEN_DEAD_LETTERS
    return OPEN_DEAD_LETTERS
