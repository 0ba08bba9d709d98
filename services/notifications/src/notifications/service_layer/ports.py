"""What the dispatchers need: from a provider, send one message or say why not; from the
database, their deliveries (``DeliveryQueue``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from notifications.domain.messages import (
    Channel,
    Delivery,
    DeliveryStatus,
    DueDelivery,
    SentMessage,
)


@dataclass(frozen=True)
class Outgoing:
    """One message for a provider. ``idempotency_key`` is stable per (event, channel)."""

    idempotency_key: str
    recipient: str
    subject: str | None
    body: str


class SendError(Exception):
    """The provider did not accept the message. ``retriable``: a later attempt may succeed."""

    retriable: bool = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientSendError(SendError):
    retriable = True


class PermanentSendError(SendError):
    retriable = False


class Sender(Protocol):
    channel: Channel

    async def send(self, message: Outgoing) -> str:
        """Hand the message to the provider; returns the provider's id for it.

        Raises ``SendError`` (``retriable`` or not) when the provider did not accept it.
        """
        ...

    async def close(self) -> None:
        """Release what the sender holds open between messages (a session, a connection)."""
        ...


class DeliveryQueue(Protocol):
    """The deliveries as a dispatcher works them. Each call is one statement that has committed
    when it returns; one caller at a time."""

    async def lease_due(
        self, channel: Channel, now: datetime, lease_until: datetime, limit: int
    ) -> list[DueDelivery]:
        """Up to ``limit`` of the pending deliveries of ``channel`` due by ``now``, oldest
        first, that no other transaction holds: each is made due again at ``lease_until``, so
        that no other dispatcher takes it before then."""
        ...

    async def release(
        self, delivery_ids: Sequence[int], lease_until: datetime, now: datetime
    ) -> None:
        """Make the deliveries still pending under this lease due at ``now`` again."""
        ...

    async def postpone(
        self,
        delivery_id: int,
        *,
        customer_id: str | None,
        next_attempt_at: datetime,
        reason: str,
        now: datetime,
        attempts: int | None = None,
    ) -> None:
        """Keep the delivery pending until ``next_attempt_at``; ``attempts`` None: unchanged."""
        ...

    async def finish(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        customer_id: str | None,
        reason: str | None,
        now: datetime,
        attempts: int | None = None,
        sent_at: datetime | None = None,
        sent: SentMessage | None = None,
    ) -> None:
        """Record the delivery's outcome; None leaves ``attempts``, ``sent_at`` and what was
        ``sent`` as they are."""
        ...

    async def send_in_app(
        self, delivery: Delivery, *, customer_id: str, body: str, now: datetime
    ) -> None:
        """Write the delivery's in-app message (once per event) and record it sent."""
        ...

    async def count_pending(self, channel: Channel) -> int: ...

    async def close(self) -> None:
        """Release the connection."""
        ...
