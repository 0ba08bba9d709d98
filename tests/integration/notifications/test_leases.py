"""The dispatchers' queue on PostgreSQL (``adapters.delivery_queue``): one statement leases a
batch with what deciding its fate needs, two instances leasing at once never share a row, a
released row is due at once, and an outcome's statement keeps what it is not given."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import astuple
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from eventing.database import create_engine, session_factory
from notifications.adapters.delivery_queue import AsyncpgDeliveryQueue
from notifications.adapters.repository import SqlAlchemyRepository
from notifications.domain.messages import (
    Channel,
    Contact,
    DeliveryStatus,
    Kind,
    Notice,
    Policy,
    SentMessage,
    deliveries_for,
)
from tests.support.infra import Infra
from tests.support.system import migrated_database

LEASE = timedelta(seconds=60)


async def test_two_instances_leasing_at_once_share_no_delivery_and_see_contacts(
    infra: Infra,
) -> None:
    url = await migrated_database(infra, "notifications")
    engine = create_engine(url, pool_size=4, application_name="notifications-lease-test")
    sessions = session_factory(engine)
    first_instance, second_instance = (
        AsyncpgDeliveryQueue(url, application_name=f"lease-test-{n}") for n in (1, 2)
    )
    now = datetime.now(UTC)
    known, erased, anonymous = (f"cust-{uuid.uuid4()}" for _ in range(3))
    orders = {f"o-{n}": (known, erased, anonymous)[n % 3] for n in range(30)}
    try:
        async with sessions() as session, session.begin():
            repository = SqlAlchemyRepository(session)
            await repository.save_contact(Contact(known, "Anna", "anna@example.com", None), now)
            await repository.mark_erased(erased)
            for n, (order_id, customer_id) in enumerate(orders.items()):
                # A third of the deliveries name no customer: their order does.
                await repository.remember_order(order_id, customer_id, "delivery", None)
                notice = Notice(Kind.ORDER_RECEIVED, order_id, {"short_id": order_id})
                named = None if n % 2 else customer_id
                policy = Policy(clock=lambda: now)
                await repository.add_deliveries(
                    deliveries_for(f"e-{order_id}", notice, named, policy)
                )

        async def lease(queue: AsyncpgDeliveryQueue = first_instance) -> list[int]:
            batch = await queue.lease_due(Channel.EMAIL, now, now + LEASE, 20)
            for due in batch:
                customer_id = orders[due.delivery.order_id]
                assert due.customer_id == customer_id
                assert due.erased is (customer_id == erased)
                assert (due.contact is not None) is (customer_id == known)
                assert due.delivery.next_attempt_at == now + LEASE
            return [due.delivery.id for due in batch]

        first, second = await asyncio.gather(lease(first_instance), lease(second_instance))
        assert len(first) + len(second) == len(orders)
        assert not set(first) & set(second)
        assert first == sorted(first) and second == sorted(second)  # oldest first
        assert await lease() == []  # all leased: none due before the lease ends

        await first_instance.release(first[:5], now + LEASE, now)
        # A lease that is not this one (another instance's, since) is left alone.
        await first_instance.release(second[:5], now + LEASE + timedelta(seconds=1), now)
        assert await lease() == first[:5]
        async with sessions() as session:
            due_later = await session.scalar(
                text(
                    "SELECT count(*) FROM deliveries WHERE channel = 'email'"
                    " AND status = 'pending' AND next_attempt_at = :lease_until"
                ),
                {"lease_until": now + LEASE},
            )
        assert due_later == len(orders)

        # Sent: what was sent is recorded; a later outcome given none of it keeps it.
        delivered = first[0]
        sent = SentMessage("anna@example.com", "Your order", "Hello Anna", "provider-1")
        await first_instance.finish(
            delivered, DeliveryStatus.SENT, customer_id=known, reason=None, now=now,
            attempts=1, sent_at=now, sent=sent,
        )  # fmt: skip
        await first_instance.postpone(
            delivered, customer_id=known, next_attempt_at=now, reason="again", now=now
        )
        async with sessions() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT attempts, sent_at, recipient, subject, body, provider_id, reason"
                        " FROM deliveries WHERE id = :id"
                    ),
                    {"id": delivered},
                )
            ).one()
        assert tuple(row) == (1, now, *astuple(sent), "again")
    finally:
        await first_instance.close()
        await second_instance.close()
        await engine.dispose()
