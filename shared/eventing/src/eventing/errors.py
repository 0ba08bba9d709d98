"""Every error the runtime raises, under one root: ``EventingError``.

Each class says with ``retriable`` whether trying the same thing again may succeed (as
aiokafka's errors do), so a caller decides "retry or give up" by category rather than by a list
of names: the consumer dead-letters at once a record whose handler raised a non-retriable
error, and the relay parks at once an outbox row that cannot be encoded. Errors of the drivers
(aiokafka, asyncpg, SQLAlchemy) are not wrapped; ``eventing.database`` classifies those.

Where a built-in exception says the same (a bad value, a missing name), the class derives from
it too, so ``except ValueError`` around a call still catches what it caught before.
"""

from __future__ import annotations

__all__ = [
    "REASON_MAX_CHARS",
    "AccessError",
    "EventingError",
    "PermanentHandlerError",
    "RestrictedTopicError",
    "TruncatedDeadLetterError",
    "UndecodableRecord",
    "UnencodableEvent",
    "UnknownTopicError",
    "UnreadableBatch",
    "bounded_reason",
]

REASON_MAX_CHARS = 500


def bounded_reason(reason: str, limit: int = REASON_MAX_CHARS) -> str:
    """A dead-letter reason as it may be stored and sent: printable, at most ``limit`` chars.

    Reasons are built from error messages, never from a record's value, but an error message
    can quote a little of what it choked on: this keeps it short and free of control bytes.
    """
    if len(reason) > limit:
        reason = reason[: limit - 3] + "..."
    if not reason.isprintable():
        reason = "".join(char if char.isprintable() else repr(char)[1:-1] for char in reason)
        if len(reason) > limit:
            reason = reason[: limit - 3] + "..."
    return reason


class EventingError(Exception):
    """The root of the runtime's errors. ``retriable``: trying again may succeed."""

    retriable: bool = False


class UndecodableRecord(EventingError):
    """A Kafka record that is not a valid CloudEvent; ``reason`` says why, for a dead letter.

    Reading the same bytes again gives the same answer: not retriable.
    """

    def __init__(self, reason: str) -> None:
        reason = bounded_reason(reason)
        super().__init__(reason)
        self.reason = reason


class UnreadableBatch(EventingError, ValueError):
    """The bytes are not a record batch v2 the lenient record reader can parse."""


class UnencodableEvent(EventingError, ValueError):
    """An event cannot be written as a CloudEvent (an empty required attribute, an invalid
    extension name, data that is not JSON): it never will be, so the relay parks its row."""


class PermanentHandlerError(EventingError):
    """Raised by a handler when retrying cannot help: the event goes to the dead-letter topic.

    Any other non-retriable ``EventingError`` raised by a handler is treated the same way.
    """


class UnknownTopicError(EventingError, LookupError):
    """The broker has no topic of that name (yet: topics are created, so it may come)."""

    retriable = True


class RestrictedTopicError(EventingError, ValueError):
    """The topic carries personal data and is not available through the tap."""


class TruncatedDeadLetterError(EventingError, ValueError):
    """A truncated copy holds only the start of the original record: it cannot be replayed."""


class TopicsRefusedError(EventingError, ValueError):
    """The broker refused to create some topics (its reason per topic in the message).
    ``retriable``: only for want of brokers, which a cluster still starting may yet have."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class AccessError(EventingError, RuntimeError):
    """The broker refused to create or describe an ACL."""
