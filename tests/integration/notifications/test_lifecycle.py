"""An order's whole lifecycle, through a real SMTP server and a real HTTP SMS receiver."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from contracts.catalogue import (
    KitchenCookingStarted,
    KitchenOrderReady,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderDeparted,
    OrderPickedUp,
    OrderReady,
    TicketQueued,
)
from notifications.adapters.providers import message_id
from notifications.domain.messages import Channel, idempotency_key
from service_kit.auth import Role
from tests.support.metrics import parse, value
from tests.support.notifications import Notifications, api, contact, new_order_id, now, placed
from tests.support.polling import eventually
from tests.support.tokens import staff


async def test_an_orders_lifecycle_sends_exactly_the_expected_messages(
    notifications: Notifications,
) -> None:
    anna, bruno = f"cust-{new_order_id()}", f"cust-{new_order_id()}"
    delivery, pickup, cancelled = new_order_id(), new_order_id(), new_order_id()
    estimate = (now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    hhmm = estimate.strftime("%H:%M UTC")
    await notifications.start()
    lines = placed(delivery, anna)[0].lines
    ids = await notifications.publish(
        [
            contact(anna, "Anna", email="anna@example.com", phone="+393331112222"),
            placed(delivery, anna),
            (OrderConfirmed(order_id=delivery, confirmed_at=now(), confirmed_by="customer",
                            customer_id=anna, lines=lines, fulfilment="delivery"), delivery),
            (TicketQueued(order_id=delivery, pizzas=2, estimated_ready_at=estimate,
                          queued_at=now()), delivery),
            (KitchenCookingStarted(order_id=delivery, cook="chef-1", started_at=now(),
                                   estimated_ready_at=estimate), delivery),
            (KitchenOrderReady(order_id=delivery, ready_at=now()), delivery),
            (OrderReady(order_id=delivery, ready_at=now(), fulfilment="delivery"), delivery),
            (OrderDeparted(order_id=delivery, driver_id="d-1", departed_at=now()), delivery),
            (OrderDelivered(order_id=delivery, driver_id="d-1", delivered_at=now()), delivery),
            placed(pickup, anna, fulfilment="pickup", quantity=1),
            (TicketQueued(order_id=pickup, pizzas=1, estimated_ready_at=estimate,
                          queued_at=now()), pickup),
            (OrderReady(order_id=pickup, ready_at=now(), fulfilment="pickup"), pickup),
            (OrderPickedUp(order_id=pickup, picked_up_at=now()), pickup),
            # Bruno's contact arrives after his order's events: his email waits for it.
            placed(cancelled, bruno),
            (OrderCancelled(order_id=cancelled, cancelled_at=now(), reason="out of mozzarella",
                            previous_status="pending"), cancelled),
            contact(bruno, "Bruno", email="bruno@example.com", phone="+39333999",
                    sms_opt_in=False),
        ]
    )  # fmt: skip
    orders = [delivery, pickup, cancelled]
    # 9 notices (4 + 3 + 2), one delivery per channel each.
    rows = await notifications.settled(orders, 27)
    assert len(rows) == 27

    emails = notifications.sinks.smtp.received
    by_recipient = Counter(tuple(email.recipients) for email in emails)
    assert by_recipient == {("anna@example.com",): 7, ("bruno@example.com",): 2}
    assert len({email.message_id for email in emails}) == 9  # none twice
    subjects = sorted(email.subject for email in emails)
    short = {order: order[-8:] for order in orders}
    assert subjects == sorted(
        [
            f"We received your order {short[delivery]}",
            f"Your order {short[delivery]} is confirmed",
            f"Your order {short[delivery]} is on its way",
            f"Your order {short[delivery]} was delivered",
            f"We received your order {short[pickup]}",
            f"Your order {short[pickup]} is confirmed",
            f"Your order {short[pickup]} is ready for pickup",
            f"We received your order {short[cancelled]}",
            f"Your order {short[cancelled]} was cancelled",
        ]
    )
    body = {email.subject: email.body for email in emails}
    assert "Hello Anna," in body[f"We received your order {short[delivery]}"]
    assert "2 pizzas for 19.00 EUR" in body[f"We received your order {short[delivery]}"]
    assert f"It should be ready at {hhmm}." in body[f"Your order {short[delivery]} is confirmed"]
    assert "out of mozzarella" in body[f"Your order {short[cancelled]} was cancelled"]
    assert "Hello Bruno," in body[f"Your order {short[cancelled]} was cancelled"]
    # The Message-ID is derived from the event and the channel.
    confirmed_email = next(e for e in emails if e.subject.endswith(f"{short[pickup]} is confirmed"))
    assert confirmed_email.message_id == message_id(idempotency_key(ids[10], Channel.EMAIL))

    sms = list(notifications.sinks.sms.delivered.values())
    assert notifications.sinks.sms.posts == len(sms) == 7
    assert {message.to for message in sms} == {"+393331112222"}
    assert {message.account_sid for message in sms} == {"AC-test"}
    assert sorted(message.body for message in sms) == sorted(
        [
            f"Mario's Pizzeria: we received your order {short[delivery]} (2 pizzas, 19.00 EUR).",
            f"Mario's Pizzeria: order {short[delivery]} confirmed, ready at about {hhmm}.",
            f"Mario's Pizzeria: order {short[delivery]} is on its way.",
            f"Mario's Pizzeria: order {short[delivery]} delivered. Buon appetito!",
            f"Mario's Pizzeria: we received your order {short[pickup]} (1 pizza, 9.50 EUR).",
            f"Mario's Pizzeria: order {short[pickup]} confirmed, ready at about {hhmm}.",
            f"Mario's Pizzeria: order {short[pickup]} is ready for pickup.",
        ]
    )

    statuses = Counter((row["channel"], row["status"]) for row in rows)
    assert statuses == {
        ("email", "sent"): 9,
        ("sms", "sent"): 7,
        ("sms", "skipped"): 2,
        ("in_app", "sent"): 9,
    }
    skipped = [row for row in rows if row["status"] == "skipped"]
    assert {row["reason"] for row in skipped} == {"customer opted out of sms"}
    assert {row["order_id"] for row in skipped} == {cancelled}

    # The manager's view of an order's deliveries, with status and reason.
    manager = staff(Role.MANAGER, subject="mgr-1")
    response = await api("GET", f"{notifications.base_url}/orders/{cancelled}/deliveries", manager)
    assert response.status_code == 200, response.text
    assert Counter((d["channel"], d["status"]) for d in response.json()) == {
        ("email", "sent"): 2,
        ("sms", "skipped"): 2,
        ("in_app", "sent"): 2,
    }
    response = await api(
        "GET", f"{notifications.base_url}/deliveries?order_id={cancelled}&status=skipped", manager
    )
    assert [d["reason"] for d in response.json()] == ["customer opted out of sms"] * 2
    bad = await api("GET", f"{notifications.base_url}/deliveries?status=lost", manager)
    assert bad.status_code == 422
    customer_view = await api(
        "GET", f"{notifications.base_url}/deliveries", staff(Role.CUSTOMER, subject=anna)
    )
    assert customer_view.status_code == 403

    # Metrics: outcomes per channel, and the dispatchers' queues drained.
    exported = parse((await api("GET", f"{notifications.base_url}/metrics")).text)
    for channel, outcome, count in [
        ("email", "sent", 9),
        ("sms", "sent", 7),
        ("sms", "skipped", 2),
        ("in_app", "sent", 9),
        ("email", "failed", 0),
    ]:
        assert value(exported, "notifications_sent_total", channel=channel, outcome=outcome) == (
            count
        ), (channel, outcome)
    await eventually(
        lambda: api("GET", f"{notifications.base_url}/metrics"),
        until=lambda response: all(
            value(parse(response.text), "notifications_dispatch_queue", channel=channel) == 0
            for channel in ("email", "sms", "in_app")
        ),
        what="empty dispatch queues",
        timeout=60,
    )


async def test_customers_list_mark_read_and_dismiss_their_in_app_messages(
    notifications: Notifications,
) -> None:
    customer, order = f"cust-{new_order_id()}", new_order_id()
    await notifications.start()
    await notifications.publish(
        [
            placed(order, customer),
            (OrderCancelled(order_id=order, cancelled_at=now(), reason="closed today",
                            previous_status="pending"), order),
        ]
    )  # fmt: skip
    url = f"{notifications.base_url}/customers/{customer}/messages"
    mine = staff(Role.CUSTOMER, subject=customer)
    messages = await eventually(
        lambda: api("GET", url, mine),
        until=lambda response: response.status_code == 200 and len(response.json()) == 2,
        what="two in-app messages",
        timeout=60,
    )
    newest, oldest = messages.json()
    assert newest["kind"] == "cancelled" and "closed today" in newest["body"]
    assert oldest["kind"] == "order_received" and newest["read_at"] is None

    read = await api("POST", f"{url}/{oldest['id']}/read", mine)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = await api("GET", f"{url}?unread_only=true", mine)
    assert [m["id"] for m in unread.json()] == [newest["id"]]
    dismissed = await api("POST", f"{url}/{newest['id']}/dismiss", mine)
    assert dismissed.status_code == 200 and dismissed.json()["dismissed_at"] is not None
    listed = await api("GET", url, mine)
    assert [m["id"] for m in listed.json()] == [oldest["id"]]
    everything = await api("GET", f"{url}?include_dismissed=true", mine)
    assert len(everything.json()) == 2

    other = staff(Role.CUSTOMER, subject="someone-else")
    assert (await api("GET", url, other)).status_code == 403
    assert (await api("POST", f"{url}/{oldest['id']}/read", other)).status_code == 403
    assert (await api("GET", url)).status_code == 401
    assert (await api("GET", url, staff(Role.MANAGER, subject="mgr"))).status_code == 200
    missing = await api("POST", f"{url}/999999999/read", mine)
    assert missing.status_code == 404 and "no message" in missing.json()["detail"]
    assert (await api("POST", f"{url}/not-a-number/read", mine)).status_code == 422
