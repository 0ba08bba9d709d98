"""A flooded API stops neither the applying of events nor the sending of messages: the consumer
and the dispatchers each have their own pool.

Every connection of the API's pool is made to hang (the test locks the table the requests read),
and more requests queue behind them; events published meanwhile must still be applied, and their
emails sent.
"""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from service_kit.auth import Role
from tests.support.notifications import Notifications, contact, new_order_id, placed
from tests.support.polling import eventually
from tests.support.tokens import staff

API_POOL = 3


async def test_a_flooded_api_leaves_the_consumer_and_the_dispatchers_their_connections(
    notifications: Notifications,
) -> None:
    notifications.extra_env["NOTIFICATIONS_DATABASE_POOL_SIZE"] = str(API_POOL)
    await notifications.start()
    customer = f"cust-{new_order_id()}"
    url = f"{notifications.base_url}/customers/{customer}/messages"
    headers = staff(Role.CUSTOMER, subject=customer)

    holder = await asyncpg.connect(notifications.dsn)
    lock = holder.transaction()
    await lock.start()
    await holder.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
    async with httpx.AsyncClient(timeout=60) as client:
        flood = [asyncio.create_task(client.get(url, headers=headers)) for _ in range(4 * API_POOL)]
        try:
            # Every API connection is stuck behind the lock; the other requests wait for one.
            await eventually(
                lambda: notifications.query(
                    "SELECT count(*) AS n FROM pg_stat_activity"
                    " WHERE application_name = 'notifications' AND wait_event_type = 'Lock'"
                ),
                until=lambda rows: rows[0]["n"] == API_POOL,
                timeout=15,
                what="the API's pool exhausted",
            )
            orders = [new_order_id() for _ in range(5)]
            await notifications.publish(
                [contact(customer, "Flo", email="flo@example.com", phone="+393330000001")]
                + [placed(order, customer) for order in orders]
            )
            # Applied on the consumer's own connections while the API has none to give.
            rows = await eventually(
                lambda: notifications.deliveries(orders),
                until=lambda rows: len(rows) == 3 * len(orders),
                timeout=20,
                what="the events applied during the flood",
            )
            assert {(r["order_id"], r["channel"]) for r in rows} == {
                (order, channel) for order in orders for channel in ("email", "sms", "in_app")
            }
            # Sent by the email dispatcher on its own pool (the in-app one waits for the lock).
            sent = await eventually(
                lambda: [
                    email
                    for email in notifications.sinks.smtp.received
                    if email.recipients == ["flo@example.com"]
                ],
                until=lambda emails: len(emails) == len(orders),
                timeout=20,
                what="the emails sent during the flood",
            )
            assert all(email.subject for email in sent)
            assert not any(task.done() for task in flood), "the flood ended too early to prove it"
        finally:
            await lock.rollback()
            await holder.close()
        responses = await asyncio.gather(*flood)
    # Those that got a connection answer once the lock goes; those that waited past the pool's
    # timeout get a 503 with a reason: never a 500.
    assert {response.status_code for response in responses} <= {200, 503}
    for response in responses:
        if response.status_code == 503:
            assert "database unavailable" in response.json()["detail"]
