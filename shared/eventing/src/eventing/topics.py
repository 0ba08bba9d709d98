"""How a system declares its topics to the runtime: each topic's shape, where its dead letters go,
and whether it carries personal data.

A ``Topology`` is the whole list. The consumer runtime routes dead letters with it, the dead-letter
publisher sizes and keys records with it, the tap refuses its restricted topics and
``eventing.admin`` creates its topics (the broker never auto-creates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["TopicSpec", "Topology"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    description: str
    config: dict[str, str] = field(default_factory=dict)
    # Where consumers dead-letter this topic's records; None: the topology's default, or, for a
    # dead-letter topic itself, nowhere.
    dead_letters: str | None = None
    # Personal data: only the principals authorised for it read it; the tap refuses it.
    restricted: bool = False

    @property
    def compacted(self) -> bool:
        """A compacted topic keeps the last record per key, so every record needs a key."""
        return "compact" in self.config.get("cleanup.policy", "")


@dataclass(frozen=True)
class Topology:
    """Every topic of a system, and the dead-letter topic of records from any other topic."""

    topics: tuple[TopicSpec, ...]
    default_dead_letters: str

    def __init__(self, topics: Iterable[TopicSpec], *, default_dead_letters: str) -> None:
        object.__setattr__(self, "topics", tuple(topics))
        object.__setattr__(self, "default_dead_letters", default_dead_letters)

    def named(self, name: str) -> TopicSpec | None:
        return next((topic for topic in self.topics if topic.name == name), None)

    @property
    def restricted(self) -> frozenset[str]:
        return frozenset(topic.name for topic in self.topics if topic.restricted)

    @property
    def dead_letter_topics(self) -> frozenset[str]:
        return frozenset(
            {self.default_dead_letters}
            | {topic.dead_letters for topic in self.topics if topic.dead_letters is not None}
        )

    def dead_letters_for(self, topic: str) -> str:
        """Where records of ``topic`` are dead-lettered.

        A topic whose name ends with a name of this topology (the outbox's ``topic_prefix``:
        tests, a cluster shared by environments) is that topic, so a prefixed restricted topic's
        records go to its restricted dead-letter topic too. Any other topic's go to the default.
        """
        for spec in sorted(self.topics, key=lambda spec: len(spec.name), reverse=True):
            if topic.endswith(spec.name):
                return spec.dead_letters or self.default_dead_letters
        return self.default_dead_letters
