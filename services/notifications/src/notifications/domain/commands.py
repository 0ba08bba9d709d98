"""What the notifications API asks the service to do (``service_layer.commands`` handles them)."""

from __future__ import annotations

from dataclasses import dataclass

from notifications.domain.messages import Channel, Message
from service_kit.commands import Command


@dataclass(frozen=True)
class MarkRead(Command[Message]):
    """Mark one of the customer's in-app messages read (the first time only)."""

    customer_id: str
    message_id: int


@dataclass(frozen=True)
class Dismiss(Command[Message]):
    """Dismiss one of the customer's in-app messages (the first time only)."""

    customer_id: str
    message_id: int


@dataclass(frozen=True)
class SendSignInCode(Command[str]):
    """Send the orders service's sign-in code now; the result is the provider's message id."""

    channel: Channel
    recipient: str
    code: str
    expires_in_seconds: int
