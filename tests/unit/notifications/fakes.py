"""In-memory doubles of the notifications service's ports: a repository that keeps the rules
its interface states (and serves the dispatchers as their ``DeliveryQueue``), a unit of work
that commits or rolls it back, and a provider."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from eventing.cloudevents_kafka import Envelope
from eventing.consumer import ReceivedEvent
from eventing.events import EventData
from notifications.adapters.repository import AbstractRepository
from notifications.domain.messages import (
    Channel,
    Contact,
    Delivery,
    DeliveryStatus,
    DueDelivery,
    DueTimer,
    Kind,
    Message,
    NewDelivery,
    SentMessage,
    TimerStatus,
)
from notifications.service_layer.ports import Outgoing
from notifications.service_layer.unit_of_work import AbstractUnitOfWork

NOW = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)


@dataclass
class KnownOrder:
    customer_id: str
    fulfilment: str
    tracking_token_sha256: str | None
    estimated_ready_at: datetime | None = None


@dataclass
class Timer:
    due_at: datetime
    estimated_ready_at: datetime
    status: TimerStatus


class FakeRepository(AbstractRepository):
    def __init__(self) -> None:
        self.locked: list[str] = []
        self.erased: set[str] = set()
        self.contacts: dict[str, tuple[Contact, datetime]] = {}
        self.forgotten: list[tuple[str, str]] = []  # (topic, key) of dead letters deleted
        self.orders: dict[str, KnownOrder] = {}
        self.deliveries: dict[int, Delivery] = {}
        self.messages: dict[int, Message] = {}
        self.message_events: set[tuple[str, Channel]] = set()
        self.timers: dict[str, Timer] = {}
        self.pending_actions: list[Callable[[], None]] = []
        self.queue_calls: list[str] = []  # what a dispatcher asked, as its DeliveryQueue

    def after_commit(self, action: Callable[[], None]) -> None:
        self.pending_actions.append(action)

    def commit(self) -> None:
        """What a commit of the caller's transaction does: run what waited for it."""
        actions, self.pending_actions = self.pending_actions, []
        for action in actions:
            action()

    # ------------------------------------------------------------------ customers and contacts
    async def lock_customer(self, customer_id: str) -> None:
        self.locked.append(customer_id)

    async def is_erased(self, customer_id: str) -> bool:
        return customer_id in self.erased

    async def mark_erased(self, customer_id: str) -> None:
        self.erased.add(customer_id)

    async def contact(self, customer_id: str) -> Contact | None:
        stored = self.contacts.get(customer_id)
        return None if stored is None else stored[0]

    async def save_contact(self, contact: Contact, updated_at: datetime) -> None:
        stored = self.contacts.get(contact.customer_id)
        if stored is None or stored[1] <= updated_at:
            self.contacts[contact.customer_id] = (contact, updated_at)

    async def delete_contact(self, customer_id: str) -> None:
        self.contacts.pop(customer_id, None)

    async def forget_dead_letters(self, topic: str, key: str) -> None:
        self.forgotten.append((topic, key))

    # ------------------------------------------------------------------ orders
    async def customer_of(self, order_id: str) -> str | None:
        order = self.orders.get(order_id)
        return None if order is None else order.customer_id

    async def remember_order(
        self,
        order_id: str,
        customer_id: str,
        fulfilment: str,
        tracking_token_sha256: str | None,
    ) -> None:
        known = self.orders.get(order_id)
        self.orders[order_id] = KnownOrder(
            customer_id,
            fulfilment,
            tracking_token_sha256 or (known.tracking_token_sha256 if known else None),
            known.estimated_ready_at if known else None,
        )

    async def set_estimate(self, order_id: str, estimated_ready_at: datetime) -> None:
        if order_id in self.orders:
            self.orders[order_id].estimated_ready_at = estimated_ready_at

    # ------------------------------------------------------------------ deliveries
    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[Channel]:
        recorded = {(d.event_id, d.channel) for d in self.deliveries.values()}
        added = []
        for new in deliveries:
            if (new.event_id, new.channel) in recorded:
                continue
            delivery_id = len(self.deliveries) + 1
            self.deliveries[delivery_id] = Delivery(
                id=delivery_id,
                event_id=new.event_id,
                channel=new.channel,
                order_id=new.order_id,
                customer_id=new.customer_id,
                kind=new.kind,
                params=new.params,
                status=DeliveryStatus.PENDING,
                reason=None,
                attempts=0,
                next_attempt_at=new.next_attempt_at,
                wait_until=new.wait_until,
                idempotency_key=new.idempotency_key,
                recipient=None,
                subject=None,
                body=None,
                provider_id=None,
                created_at=new.next_attempt_at,
                sent_at=None,
            )
            added.append(new.channel)
        return added

    async def assign_customer(self, order_id: str, customer_id: str) -> None:
        for delivery in self.of(lambda d: d.order_id == order_id and d.customer_id is None):
            self.deliveries[delivery.id] = replace(delivery, customer_id=customer_id)

    async def lease_due(
        self, channel: Channel, now: datetime, lease_until: datetime, limit: int
    ) -> list[DueDelivery]:
        due = self.of(
            lambda d: (
                d.channel is channel
                and d.status is DeliveryStatus.PENDING
                and d.next_attempt_at <= now
            )
        )
        self.queue_calls.append("lease_due")
        leased = sorted(due, key=lambda d: (d.next_attempt_at, d.id))[:limit]
        batch = []
        for delivery in sorted(leased, key=lambda d: d.id):
            delivery = replace(delivery, next_attempt_at=lease_until)
            self.deliveries[delivery.id] = delivery
            order = self.orders.get(delivery.order_id)
            customer_id = delivery.customer_id or (None if order is None else order.customer_id)
            contact = None if customer_id is None else await self.contact(customer_id)
            batch.append(DueDelivery(delivery, customer_id, contact, customer_id in self.erased))
        return batch

    async def release(
        self, delivery_ids: Sequence[int], lease_until: datetime, now: datetime
    ) -> None:
        self.queue_calls.append("release")
        for delivery_id in delivery_ids:
            delivery = self.deliveries[delivery_id]
            if (
                delivery.status is DeliveryStatus.PENDING
                and delivery.next_attempt_at == lease_until
            ):
                self.deliveries[delivery_id] = replace(delivery, next_attempt_at=now)

    async def close(self) -> None:
        pass

    async def count_pending(self, channel: Channel) -> int:
        return len(self.of(lambda d: d.channel is channel and d.status is DeliveryStatus.PENDING))

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
        self.queue_calls.append("postpone")
        delivery = self.deliveries[delivery_id]
        self.deliveries[delivery_id] = replace(
            delivery,
            customer_id=customer_id,
            next_attempt_at=next_attempt_at,
            reason=reason,
            attempts=delivery.attempts if attempts is None else attempts,
        )

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
        self.queue_calls.append("finish")
        delivery = replace(
            self.deliveries[delivery_id], status=status, customer_id=customer_id, reason=reason
        )
        if attempts is not None:
            delivery = replace(delivery, attempts=attempts)
        if sent_at is not None:
            delivery = replace(delivery, sent_at=sent_at)
        if sent is not None:
            delivery = replace(
                delivery,
                recipient=sent.recipient,
                subject=sent.subject,
                body=sent.body,
                provider_id=sent.provider_id,
            )
        self.deliveries[delivery_id] = delivery

    async def skip_pending(
        self, customer_id: str, channels: Iterable[Channel], reason: str
    ) -> None:
        channels = set(channels)
        for delivery in self.of(
            lambda d: (
                d.customer_id == customer_id
                and d.status is DeliveryStatus.PENDING
                and d.channel in channels
            )
        ):
            self.deliveries[delivery.id] = replace(
                delivery, status=DeliveryStatus.SKIPPED, reason=reason
            )

    async def erase_contents(self, customer_id: str, channels: Iterable[Channel]) -> None:
        channels = set(channels)
        for delivery in self.of(lambda d: d.customer_id == customer_id and d.channel in channels):
            self.deliveries[delivery.id] = replace(
                delivery, recipient=None, subject=None, body=None
            )

    def of(self, keep: Callable[[Delivery], bool]) -> list[Delivery]:
        return [delivery for delivery in self.deliveries.values() if keep(delivery)]

    def delivery(self, channel: Channel) -> Delivery:
        [delivery] = self.of(lambda d: d.channel is channel)
        return delivery

    # ------------------------------------------------------------------ in-app messages
    async def send_in_app(
        self, delivery: Delivery, *, customer_id: str, body: str, now: datetime
    ) -> None:
        self.queue_calls.append("send_in_app")
        await self.add_message(
            event_id=delivery.event_id, order_id=delivery.order_id, customer_id=customer_id,
            channel=Channel.IN_APP, kind=delivery.kind, body=body,
        )  # fmt: skip
        self.deliveries[delivery.id] = replace(
            self.deliveries[delivery.id], status=DeliveryStatus.SENT, customer_id=customer_id,
            reason=None, sent_at=now,
        )  # fmt: skip

    async def add_message(
        self,
        *,
        event_id: str,
        order_id: str,
        customer_id: str,
        channel: Channel,
        kind: Kind,
        body: str,
    ) -> None:
        if (event_id, channel) in self.message_events:
            return
        self.message_events.add((event_id, channel))
        message_id = len(self.messages) + 1
        self.messages[message_id] = Message(
            message_id, order_id, customer_id, channel, kind, body, created_at=NOW
        )

    async def message(self, customer_id: str, message_id: int) -> Message | None:
        message = self.messages.get(message_id)
        return message if message is not None and message.customer_id == customer_id else None

    async def save_message(self, message: Message) -> None:
        self.messages[message.id] = message

    # ------------------------------------------------------------------ late timers
    async def arm_timer(
        self, order_id: str, due_at: datetime, estimated_ready_at: datetime
    ) -> None:
        timer = self.timers.get(order_id)
        if timer is None or timer.status is TimerStatus.ARMED:
            self.timers[order_id] = Timer(due_at, estimated_ready_at, TimerStatus.ARMED)

    async def cancel_timer(self, order_id: str, now: datetime) -> None:
        timer = self.timers.get(order_id)
        if timer is None:
            self.timers[order_id] = Timer(now, now, TimerStatus.CANCELLED)
        elif timer.status is TimerStatus.ARMED:
            timer.status = TimerStatus.CANCELLED

    async def due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        due = sorted(
            (timer.due_at, order_id, timer.estimated_ready_at)
            for order_id, timer in self.timers.items()
            if timer.status is TimerStatus.ARMED and timer.due_at <= now
        )
        return [DueTimer(order_id, estimate) for _, order_id, estimate in due[:limit]]

    async def fire_timer(self, order_id: str, now: datetime) -> None:
        self.timers[order_id].status = TimerStatus.FIRED


class FakeUnitOfWork(AbstractUnitOfWork):
    """Commits by keeping the repository's changes; a block left without a commit restores
    the repository as it was when the block began."""

    def __init__(self, repository: FakeRepository | None = None) -> None:
        self.repository: FakeRepository = repository or FakeRepository()
        self.commits = 0
        self._before: dict[str, Any] | None = None

    async def __aenter__(self) -> FakeUnitOfWork:
        self._before = copy.deepcopy(self.repository.__dict__)
        return self

    async def commit(self) -> None:
        self.repository.commit()
        self.commits += 1
        self._before = copy.deepcopy(self.repository.__dict__)

    async def rollback(self) -> None:
        if self._before is not None:
            self.repository.__dict__.update(self._before)
            self.repository.pending_actions = []
        self._before = None


class FakeSender:
    """A provider that raises ``error`` (accepts, when None) and records what it accepted."""

    def __init__(self, channel: Channel, error: Exception | None = None) -> None:
        self.channel = channel
        self.error = error
        self.sent: list[Outgoing] = []
        self.closed = False

    async def send(self, message: Outgoing) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append(message)
        return f"fake-{len(self.sent)}"

    async def close(self) -> None:
        self.closed = True


def received(data: EventData, event_id: str | None = None, topic: str = "t") -> ReceivedEvent[Any]:
    """``data`` as the consumer hands it to a handler."""
    envelope = Envelope(
        id=event_id or str(uuid.uuid4()), type=data.event_type, source="/test", data={}
    )
    return ReceivedEvent(data, envelope, topic=topic, partition=0, offset=0)
