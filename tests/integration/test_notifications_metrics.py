"""Notifications' metrics count what committed: deliveries queued by handlers, outcomes recorded
by the dispatchers (with fake providers here; the real ones are in tests/integration/notifications).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import generate_latest
from sqlalchemy import select, text

from contracts.catalogue import OrderLine, OrderPlaced
from eventing.cloudevents_kafka import Envelope
from eventing.consumer import ReceivedEvent
from eventing.database import create_engine, session_factory
from notifications.adapters.delivery_queue import AsyncpgDeliveryQueue
from notifications.adapters.orm import deliveries_table
from notifications.adapters.repository import SqlAlchemyRepository
from notifications.domain.messages import Channel, Policy
from notifications.service_layer.dispatch import Dispatcher, RetryPolicy
from notifications.service_layer.events import EVENT_HANDLERS, EventDependencies
from notifications.service_layer.ports import (
    Outgoing,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from service_kit.handlers import subscriptions
from tests.support.infra import Infra
from tests.support.metrics import parse, value
from tests.support.system import migrated_database


def metric(name: str, **labels: str) -> float:
    return value(parse(generate_latest().decode()), name, **labels)


def sent(channel: str, outcome: str = "sent") -> float:
    return metric("notifications_sent_total", channel=channel, outcome=outcome)


def received(order_id: str, customer_id: str) -> ReceivedEvent[OrderPlaced]:
    data = OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        lines=(
            OrderLine(pizza="Margherita", size="medium", quantity=1, unit_price=Decimal("9.50")),
        ),
        total=Decimal("9.50"),
        placed_at=datetime.now(UTC),
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=data.event_type,
        source="/mariospizzeria/orders",
        data=data.model_dump(mode="json"),
        subject=order_id,
    )
    return ReceivedEvent(data, envelope, topic="pizzeria.orders", partition=0, offset=0)


class FakeSender:
    """A provider that fails with ``error`` (or accepts, when None) and records what it got."""

    def __init__(self, channel: Channel, error: SendError | None = None) -> None:
        self.channel = channel
        self.error = error
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append(message)
        return f"fake-{len(self.sent)}"

    async def close(self) -> None:
        pass


async def test_deliveries_and_their_outcomes_are_counted_once_after_commit(infra: Infra) -> None:
    url = await migrated_database(infra, "notifications")
    engine = create_engine(url, application_name="notifications-metrics-test")
    sessions = session_factory(engine)
    queue = AsyncpgDeliveryQueue(url, application_name="dispatch-test")  # as a dispatcher has
    [order_received] = subscriptions(
        [h for h in EVENT_HANDLERS if h.name == "notifications.order_received"],
        EventDependencies(Policy(), SqlAlchemyRepository),
    )
    customer = f"cust-{uuid.uuid4()}"
    event = received(str(uuid.uuid4()), customer)
    try:
        queued = metric("notifications_queued_total", channel="in_app")
        async with sessions() as session, session.begin():
            await order_received.handler(session, event)
            assert metric("notifications_queued_total", channel="in_app") == queued
        assert metric("notifications_queued_total", channel="in_app") == queued + 1

        # The same event again: its deliveries exist, nothing new is queued or counted.
        async with sessions() as session, session.begin():
            await order_received.handler(session, event)
        assert metric("notifications_queued_total", channel="in_app") == queued + 1

        # Rolled back: never queued.
        async with sessions() as session:
            await session.begin()
            await order_received.handler(session, received(str(uuid.uuid4()), customer))
            await session.rollback()
        assert metric("notifications_queued_total", channel="in_app") == queued + 1
        async with sessions() as session:
            assert len((await session.execute(select(deliveries_table))).all()) == 3

        # In-app: written and counted sent.
        in_app = sent("in_app")
        assert await Dispatcher(Channel.IN_APP, queue, None, RetryPolicy()).dispatch_due()
        assert sent("in_app") == in_app + 1

        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO contacts VALUES (:c, 'Carla', 'carla@example.com', NULL,"
                    " true, true, now())"
                ),
                {"c": customer},
            )
        # SMS without a phone number: skipped, with the reason.
        skipped = sent("sms", "skipped")
        assert await Dispatcher(
            Channel.SMS, queue, FakeSender(Channel.SMS), RetryPolicy()
        ).dispatch_due()
        assert sent("sms", "skipped") == skipped + 1

        # Email: a transient failure is retried later, a permanent one is failed.
        retries = metric("notifications_retries_total", channel="email")
        flaky = FakeSender(Channel.EMAIL, TransientSendError("421 try later"))
        retry = RetryPolicy(base_seconds=0.01, cap_seconds=0.01, max_attempts=5)
        assert await Dispatcher(Channel.EMAIL, queue, flaky, retry).dispatch_due()
        assert metric("notifications_retries_total", channel="email") == retries + 1
        failed = sent("email", "failed")
        refusing = FakeSender(Channel.EMAIL, PermanentSendError("550 no such user"))
        row = None
        for _ in range(10_000):  # until its (10 ms) back-off is over
            if row is not None and row["status"] != "pending":
                break
            await Dispatcher(Channel.EMAIL, queue, refusing, retry).dispatch_due()
            async with sessions() as session:
                row = (
                    (
                        await session.execute(
                            select(deliveries_table).where(deliveries_table.c.channel == "email")
                        )
                    )
                    .mappings()
                    .one()
                )
        assert row is not None
        assert sent("email", "failed") == failed + 1
        assert (row["status"], row["reason"], row["attempts"]) == ("failed", "550 no such user", 2)
    finally:
        await queue.close()
        await engine.dispose()
