"""What the notifications service tells customers, and the rules for telling it. No infrastructure.

An event becomes a ``Notice`` (what happened to which order, with the template variables that are
no personal data); a notice becomes one delivery per channel (``deliveries_for``). At send time
a delivery is either addressed (a contact with an address on that channel, who did not opt out)
or skipped with a reason. Transient provider failures are retried with capped exponential
back-off. An in-app message keeps the first time it was read and dismissed. Who may read an
order's in-app messages is decided here too (``order_messages_access``).
"""

from __future__ import annotations

import hmac
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from contracts.catalogue import is_tracking_token, tracking_token_sha256


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    SMS = "sms"


class Kind(StrEnum):
    ORDER_RECEIVED = "order_received"
    ORDER_CONFIRMED = "order_confirmed"
    READY_FOR_PICKUP = "ready_for_pickup"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RUNNING_LATE = "running_late"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its dispatcher (or for the order's contact)
    SENT = "sent"  # the provider accepted it (in-app: the message row is written)
    FAILED = "failed"  # permanently refused, or transient failures past the attempt budget
    SKIPPED = "skipped"  # never sent, on purpose: opted out, no address, contact unknown/erased


class TimerStatus(StrEnum):
    ARMED = "armed"
    FIRED = "fired"
    CANCELLED = "cancelled"


CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS, Channel.IN_APP)
# The channels whose deliveries hold personal data (the address, a text with the name): an
# erasure skips and empties them. In-app messages carry none.
PERSONAL_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS)
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c2f3e-3c43-4e5b-9a59-5b7f3a1d0c11")

# Why a delivery of an erased customer is not sent.
CONTACT_ERASED = "contact erased"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    """The service's delivery rules that handlers need (from settings)."""

    late_grace: timedelta = timedelta(minutes=5)
    contact_wait: timedelta = timedelta(minutes=10)
    clock: Clock = utc_now


@dataclass(frozen=True)
class Notice:
    """Something to tell the customer of ``order_id``; ``params`` fill the templates."""

    kind: Kind
    order_id: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Contact:
    customer_id: str
    name: str
    email: str | None
    phone: str | None
    email_opt_in: bool = True
    sms_opt_in: bool = True


@dataclass(frozen=True)
class NewDelivery:
    """A notice to send on one channel, as recorded: ``pending``, due at once, waiting for the
    order's customer or contact until ``wait_until``."""

    event_id: str
    channel: Channel
    order_id: str
    customer_id: str | None
    kind: Kind
    params: dict[str, str]
    next_attempt_at: datetime
    wait_until: datetime
    idempotency_key: str


def deliveries_for(
    event_id: str, notice: Notice, customer_id: str | None, policy: Policy
) -> list[NewDelivery]:
    """One delivery of ``notice`` per channel; ``customer_id`` None: resolved when sent."""
    now = policy.clock()
    return [
        NewDelivery(
            event_id=event_id,
            channel=channel,
            order_id=notice.order_id,
            customer_id=customer_id,
            kind=notice.kind,
            params=notice.params,
            next_attempt_at=now,
            wait_until=now + policy.contact_wait,
            idempotency_key=idempotency_key(event_id, channel),
        )
        for channel in CHANNELS
    ]


@dataclass(frozen=True)
class Delivery:
    """A recorded delivery: what to send, to whom once sent, and how it went."""

    id: int
    event_id: str
    channel: Channel
    order_id: str
    customer_id: str | None
    kind: Kind
    params: dict[str, str]
    status: DeliveryStatus
    reason: str | None
    attempts: int
    next_attempt_at: datetime
    wait_until: datetime
    idempotency_key: str
    recipient: str | None
    subject: str | None
    body: str | None
    provider_id: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class DueDelivery:
    """A delivery a dispatcher leased, with what deciding its fate needs: its customer (the
    delivery's, else its order's; None while neither is known), the customer's contact details,
    and whether the customer was erased."""

    delivery: Delivery
    customer_id: str | None
    contact: Contact | None
    erased: bool


@dataclass(frozen=True)
class SentMessage:
    """What a provider accepted for a delivery: where it went, what it said, the provider's id."""

    recipient: str
    subject: str | None
    body: str
    provider_id: str


@dataclass(frozen=True)
class Message:
    """An in-app message, as its customer reads it."""

    id: int
    order_id: str
    customer_id: str
    channel: Channel
    kind: Kind
    body: str
    created_at: datetime
    read_at: datetime | None = None
    dismissed_at: datetime | None = None

    def mark_read(self, at: datetime) -> Message:
        """Read at ``at``; a message read before keeps its first time."""
        return self if self.read_at is not None else replace(self, read_at=at)

    def dismiss(self, at: datetime) -> Message:
        """Dismissed at ``at``; a message dismissed before keeps its first time."""
        return self if self.dismissed_at is not None else replace(self, dismissed_at=at)


class MessageNotFound(Exception):
    """No such in-app message for that customer."""


@dataclass(frozen=True)
class DueTimer:
    """A late timer that came due: the order and the estimate it was armed with."""

    order_id: str
    estimated_ready_at: datetime


@dataclass(frozen=True)
class Skip:
    """A delivery that will not be sent, and why (shown in the API and counted in metrics)."""

    reason: str


def short_id(order_id: str) -> str:
    """What customers see of an order id: its end (uuid7 ids begin with a timestamp, so orders
    placed close together share their first characters)."""
    return order_id[-8:]


def format_total(total: object) -> str:
    return f"{total} EUR"


def format_time(moment: datetime) -> str:
    return moment.strftime("%H:%M UTC")


def pizzas_text(pizzas: int) -> str:
    return f"{pizzas} pizza" if pizzas == 1 else f"{pizzas} pizzas"


def address_for(channel: Channel, contact: Contact | None) -> str | Skip:
    """Where an email or SMS goes, or why it is skipped. In-app messages need no address."""
    if contact is None:
        return Skip("no contact details for the customer")
    if channel is Channel.EMAIL:
        if not contact.email_opt_in:
            return Skip("customer opted out of email")
        return contact.email or Skip("customer has no email address")
    if channel is Channel.SMS:
        if not contact.sms_opt_in:
            return Skip("customer opted out of sms")
        return contact.phone or Skip("customer has no phone number")
    raise ValueError(f"{channel} needs no address")


def idempotency_key(event_id: str, channel: Channel) -> str:
    """Stable per (event, channel): the provider de-duplicates a resend after a crash with it."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{event_id}/{channel.value}"))


def late_event_id(order_id: str) -> str:
    """The running-late warning is one per order: its deliveries are keyed by this id."""
    return f"late:{order_id}"


def late_due_at(estimated_ready_at: datetime, grace: timedelta) -> datetime:
    if estimated_ready_at.tzinfo is None:
        raise ValueError("estimated_ready_at must be timezone-aware")
    return estimated_ready_at + grace


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before attempt ``attempts + 1``: exponential, capped, with jitter in [½, 1]."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def give_up(attempts: int, max_attempts: int) -> bool:
    return attempts >= max_attempts


# ------------------------------------------------------------------ who may read an order's
class Access(StrEnum):
    """The answer to "may this caller read the messages of this order?"."""

    GRANTED = "granted"
    NOTHING_PRESENTED = "nothing presented"  # neither a tracking token nor a bearer token
    NOT_A_TOKEN = "not a tracking token"  # noqa: S105 - garbled: no credential at all
    WRONG_TOKEN = "not the order's token"  # noqa: S105 - a verdict, not a secret; also unknown
    NOT_THEIRS = "not theirs"  # a valid bearer token of another customer, or of another role
    NO_SUCH_ORDER = "no such order"  # a manager asked about an order never heard of


@dataclass(frozen=True)
class OrderOwner:
    """What the service knows of an order: its customer and its tracking token's hash."""

    customer_id: str
    tracking_token_sha256: str | None


@dataclass(frozen=True)
class Reader:
    """Whom a valid bearer token speaks for."""

    subject: str
    is_customer: bool
    is_manager: bool


def order_messages_access(
    order: OrderOwner | None, *, tracking_token: str | None, reader: Reader | None
) -> Access:
    """The holder of the order's tracking token, the order's customer or a manager may read.

    A tracking token that does not fit is refused as no credential, whether the order exists or
    not, so a guessed order id reveals nothing (the orders API answers the same); a customer is
    refused the same way whether the order is someone else's or unknown. Text that has not even
    the form of a tracking token is no credential either (like a malformed bearer token).
    """
    if tracking_token is None and reader is None:
        return Access.NOTHING_PRESENTED
    if tracking_token is not None and not is_tracking_token(tracking_token) and reader is None:
        return Access.NOT_A_TOKEN
    if (
        tracking_token is not None
        and order is not None
        and order.tracking_token_sha256 is not None
        and hmac.compare_digest(order.tracking_token_sha256, tracking_token_sha256(tracking_token))
    ):
        return Access.GRANTED
    if reader is None:
        return Access.WRONG_TOKEN
    if reader.is_manager:
        return Access.GRANTED if order is not None else Access.NO_SUCH_ORDER
    if reader.is_customer and order is not None and order.customer_id == reader.subject:
        return Access.GRANTED
    return Access.NOT_THEIRS
