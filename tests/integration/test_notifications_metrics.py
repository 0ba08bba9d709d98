"""notifications_sent_total counts in-app messages once their transaction commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import generate_latest

from eventing.catalogue import OrderLine, OrderPlaced
from eventing.cloudevents_kafka import Envelope
from eventing.consumer import ReceivedEvent
from eventing.database import create_engine, session_factory
from notifications.service_layer.handlers import order_received
from tests.support.infra import Infra
from tests.support.metrics import parse, value
from tests.support.system import migrated_database


def sent() -> float:
    return value(
        parse(generate_latest().decode()),
        "notifications_sent_total",
        channel="in_app",
        outcome="sent",
    )


def received(order_id: str) -> ReceivedEvent[OrderPlaced]:
    data = OrderPlaced(
        order_id=order_id,
        customer_id="cust-1",
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


async def test_an_in_app_message_is_counted_once_after_commit(infra: Infra) -> None:
    url = await migrated_database(infra, "notifications")
    engine = create_engine(url, application_name="notifications-metrics-test")
    sessions = session_factory(engine)
    event = received(str(uuid.uuid4()))
    try:
        start = sent()
        async with sessions() as session, session.begin():
            await order_received(session, event)
            assert sent() == start  # not before the commit
        assert sent() == start + 1

        # The same event again (its message already written): nothing new to count.
        async with sessions() as session, session.begin():
            await order_received(session, event)
        assert sent() == start + 1

        # Rolled back: the message was never written, so it was never sent.
        other = received(str(uuid.uuid4()))
        async with sessions() as session:
            await session.begin()
            await order_received(session, other)
            await session.rollback()
        assert sent() == start + 1
    finally:
        await engine.dispose()
