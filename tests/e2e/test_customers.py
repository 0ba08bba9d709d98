"""Customers and guests across the whole system: a customer signs in with a code that reaches
their phone (or mailbox) through the notifications service, orders with their stored details,
finds the order and its messages; a guest order with that customer's phone is told to its own
snapshot and leaves the customer as they were."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service_kit.auth import Role
from tests.support.customers import Person, ask_for_code, bearer, sign_in
from tests.support.polling import eventually
from tests.support.system import System
from tests.support.tokens import staff


def manager() -> dict[str, str]:
    return staff(Role.MANAGER, subject="manager-anna")


@pytest.mark.parametrize("by", ["phone", "email"])
async def test_a_customer_signs_in_orders_and_reads_their_messages(system: System, by: str) -> None:
    assert system.sinks is not None
    person = Person.unique()
    async with (
        httpx.AsyncClient(base_url=system.url("orders"), timeout=30) as orders,
        httpx.AsyncClient(base_url=system.url("notifications"), timeout=10) as notifications,
    ):
        answer = await sign_in(orders, system.sinks, person.contact(by), name=person.name)
        assert answer["new_customer"] is True
        me = bearer(answer)
        customer_id = answer["customer_id"]
        details = {"address": person.address}
        changed = await orders.patch("/customers/me", json=details, headers=me)
        assert changed.status_code == 200, changed.text

        placed = await orders.post(
            "/orders", json={"lines": [{"pizza": "Hawaiian", "quantity": 2}]}, headers=me
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        assert placed.json()["customer_id"] == customer_id

        mine = await orders.get("/customers/me/orders", headers=me)
        assert [order["id"] for order in mine.json()["orders"]] == [order_id]

        # The same token reads the customer's in-app messages from the notifications service.
        messages = await eventually(
            lambda: notifications.get("/customers/me/messages", headers=me),
            until=lambda r: r.status_code == 200 and len(r.json()) >= 1,
            timeout=60,
            what="the customer's order_received message",
        )
        [received] = messages.json()
        assert (received["order_id"], received["kind"]) == (order_id, "order_received")
        assert received["customer_id"] == customer_id
        per_order = await notifications.get(f"/orders/{order_id}/messages", headers=me)
        assert [m["id"] for m in per_order.json()] == [received["id"]]
        read = await notifications.post(f"/customers/me/messages/{received['id']}/read", headers=me)
        assert read.status_code == 200 and read.json()["read_at"] is not None
        unread = await notifications.get("/customers/me/messages?unread_only=true", headers=me)
        assert unread.json() == []
        # Another customer's token reads none of it.
        other = await sign_in(orders, system.sinks, Person.unique().contact(by))
        assert (
            await notifications.get("/customers/me/messages", headers=bearer(other))
        ).json() == []
        refused = await notifications.get(
            f"/customers/{customer_id}/messages", headers=bearer(other)
        )
        assert refused.status_code == 403, refused.text
        staff_only = await notifications.get("/deliveries", headers=me)
        assert staff_only.status_code == 403, staff_only.text

        # And the order's email or SMS went to the customer's stored contact, by name.
        def reached() -> list[str]:
            assert system.sinks is not None
            if by == "phone":
                return [
                    sms.body
                    for sms in system.sinks.sms.delivered.values()
                    if sms.to == person.e164 and order_id[-8:] in sms.body
                ]
            return [
                mail.body
                for mail in system.sinks.smtp.received
                if person.email in mail.recipients and order_id[-8:] in mail.body
            ]

        [notice] = await eventually(
            reached, until=lambda found: len(found) == 1, timeout=60, what="notice"
        )
        if by == "email":
            assert person.name in notice


async def test_a_guest_order_is_told_to_its_snapshot_and_leaves_the_customer_alone(
    system: System,
) -> None:
    assert system.sinks is not None
    customer, guest = Person.unique(), Person.unique()
    async with httpx.AsyncClient(base_url=system.url("orders"), timeout=30) as orders:
        answer = await sign_in(orders, system.sinks, customer.contact("email"), name=customer.name)
        me = bearer(answer)
        customer_id = answer["customer_id"]
        profile = {"phone": customer.phone, "address": customer.address}
        code = await ask_for_code(orders, system.sinks, customer.contact("phone"))
        changed = await orders.patch(
            "/customers/me", json={**profile, "phone_code": code}, headers=me
        )
        assert changed.status_code == 200, changed.text
        stored_before = (await orders.get(f"/customers/{customer_id}", headers=manager())).json()

        # Someone orders with the customer's phone, their own name, email and address.
        snapshot: dict[str, Any] = {
            "name": guest.name,
            "phone": customer.phone,
            "email": guest.email,
            "address": guest.address,
        }
        placed = await orders.post(
            "/orders", json={"customer": snapshot, "lines": [{"pizza": "Margherita"}]}
        )
        assert placed.status_code == 201, placed.text
        assert placed.json()["customer_id"] is None
        assert customer_id not in placed.text
        order_id = placed.json()["id"]

        # Told as the snapshot says: the guest's email, greeting the guest's name.
        def emails_of_order() -> list[Any]:
            assert system.sinks is not None
            return [m for m in system.sinks.smtp.received if order_id[-8:] in m.subject]

        [email] = await eventually(
            emails_of_order, until=lambda found: len(found) == 1, timeout=60, what="email"
        )
        assert email.recipients == [guest.email]
        assert guest.name in email.body and customer.name not in email.body

        stored_after = (await orders.get(f"/customers/{customer_id}", headers=manager())).json()
        assert stored_after == stored_before
        mine = await orders.get("/customers/me/orders", headers=me)
        assert mine.json()["orders"] == []
