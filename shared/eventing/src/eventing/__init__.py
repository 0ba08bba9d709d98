"""The event runtime: CloudEvents over Kafka, a transactional outbox and its relay, a consumer
with an inbox and dead letters, and readers of whole topics.

A service writes events with ``Outbox`` in its own transactions and runs ``run_relay`` to
publish them; it consumes with an ``EventConsumer``, whose subscriptions (``Subscription``,
``TombstoneSubscription``) apply each event once. A system declares its topics as a
``Topology`` of ``TopicSpec`` objects. Tools read topics with ``TopicReader`` (or
``eventing.tap.tap``) and handle dead letters with ``read_dead_letters`` and
``replay_dead_letters``. Every error the runtime raises is an ``EventingError``
(``eventing.errors``), which says whether it is ``retriable``.

The names below are the public API; each is imported from its module when first used, so that
importing one light module (``eventing.events``, ``eventing.errors``) does not load the Kafka,
database and tracing clients of the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventing.acls import Access, Grant, described_grants, ensure_acls, grants_of
    from eventing.admin import ensure_topics
    from eventing.cloudevents_kafka import DecodeLimits, Envelope, decode, encode
    from eventing.consumer import (
        EventConsumer,
        ReceivedEvent,
        Subscription,
        Tombstone,
        TombstoneSubscription,
    )
    from eventing.database import (
        asyncpg_dsn,
        create_engine,
        eventing_metadata,
        is_database_unavailable,
        new_engine,
        session_factory,
    )
    from eventing.deadletter import (
        DeadLetter,
        forget_dead_letters,
        kept_dead_letters,
        read_dead_letters,
        replay_dead_letters,
    )
    from eventing.errors import (
        AccessError,
        EventingError,
        PermanentHandlerError,
        RestrictedTopicError,
        TruncatedDeadLetterError,
        UndecodableRecord,
        UnencodableEvent,
        UnknownTopicError,
        UnreadableBatch,
    )
    from eventing.events import EventData, event_types, model_for
    from eventing.ids import uuid7
    from eventing.kafka_security import KafkaSecurity
    from eventing.outbox import Outbox, OutboxEvent
    from eventing.relay import OutboxRelay, run_relay
    from eventing.settings import ConsumerSettings, RelaySettings
    from eventing.tap import TapFilter, TopicReader
    from eventing.topics import TopicSpec, Topology

__all__ = [
    "Access",
    "AccessError",
    "ConsumerSettings",
    "DeadLetter",
    "DecodeLimits",
    "Envelope",
    "EventConsumer",
    "EventData",
    "EventingError",
    "Grant",
    "KafkaSecurity",
    "Outbox",
    "OutboxEvent",
    "OutboxRelay",
    "PermanentHandlerError",
    "ReceivedEvent",
    "RelaySettings",
    "RestrictedTopicError",
    "Subscription",
    "TapFilter",
    "Tombstone",
    "TombstoneSubscription",
    "TopicReader",
    "TopicSpec",
    "Topology",
    "TruncatedDeadLetterError",
    "UndecodableRecord",
    "UnencodableEvent",
    "UnknownTopicError",
    "UnreadableBatch",
    "asyncpg_dsn",
    "create_engine",
    "decode",
    "described_grants",
    "encode",
    "ensure_acls",
    "ensure_topics",
    "event_types",
    "eventing_metadata",
    "forget_dead_letters",
    "grants_of",
    "is_database_unavailable",
    "kept_dead_letters",
    "model_for",
    "new_engine",
    "read_dead_letters",
    "replay_dead_letters",
    "run_relay",
    "session_factory",
    "uuid7",
]

# Where each public name lives. The functions ``eventing.tap.tap`` and ``eventing.backoff.backoff``
# are not among them: their names are their modules'.
_MODULES: dict[str, tuple[str, ...]] = {
    "eventing.outbox": ("Outbox", "OutboxEvent"),
    "eventing.relay": ("OutboxRelay", "run_relay"),
    "eventing.settings": ("ConsumerSettings", "RelaySettings"),
    "eventing.consumer": (
        "EventConsumer",
        "ReceivedEvent",
        "Subscription",
        "Tombstone",
        "TombstoneSubscription",
    ),
    "eventing.events": ("EventData", "event_types", "model_for"),
    "eventing.cloudevents_kafka": ("DecodeLimits", "Envelope", "decode", "encode"),
    "eventing.topics": ("TopicSpec", "Topology"),
    "eventing.admin": ("ensure_topics",),
    "eventing.tap": ("TapFilter", "TopicReader"),
    "eventing.deadletter": (
        "DeadLetter",
        "forget_dead_letters",
        "kept_dead_letters",
        "read_dead_letters",
        "replay_dead_letters",
    ),
    "eventing.acls": ("Access", "Grant", "described_grants", "ensure_acls", "grants_of"),
    "eventing.kafka_security": ("KafkaSecurity",),
    "eventing.database": (
        "asyncpg_dsn",
        "create_engine",
        "eventing_metadata",
        "is_database_unavailable",
        "new_engine",
        "session_factory",
    ),
    "eventing.ids": ("uuid7",),
    "eventing.errors": (
        "AccessError",
        "EventingError",
        "PermanentHandlerError",
        "RestrictedTopicError",
        "TruncatedDeadLetterError",
        "UndecodableRecord",
        "UnencodableEvent",
        "UnknownTopicError",
        "UnreadableBatch",
    ),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
