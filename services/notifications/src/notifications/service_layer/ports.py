"""What the dispatchers need from a provider: send one message, or say why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from notifications.domain.messages import Channel


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
