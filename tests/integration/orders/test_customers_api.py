"""Customers (manager): reading what is stored, erasure with a tombstone on the contacts topic,
and a phone and an email of two different customers."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from contracts.topics import CUSTOMER_CONTACTS, ORDERS
from service_kit.auth import Role
from tests.support.infra import Infra
from tests.support.kafka import read_topic
from tests.support.orders import OrdersApi
from tests.support.processes import relay_process

Records = list[ConsumerRecord[Any, Any]]


def unique_customer() -> dict[str, str]:
    """Contact details nobody else uses, so a leak of exactly these can be searched for."""
    suffix = uuid.uuid4().hex[:8]
    digits = f"{random.randrange(10**7):07d}"
    return {
        "name": f"Erika Erased {suffix}",
        "phone": f"+39 06 {digits[:3]} {digits[3:]}",
        "email": f"erika.{suffix}@example.com",
        "address": f"Via Cancellata {suffix}, Roma",
    }


def order_of(customer: dict[str, str], fulfilment: str = "delivery") -> dict[str, Any]:
    return {
        "customer": customer,
        "lines": [{"pizza": "Margherita", "size": "medium", "quantity": 1}],
        "fulfilment": fulfilment,
    }


def of_keys(records: Records, keys: set[str]) -> Records:
    wanted = {key.encode() for key in keys}
    return [record for record in records if record.key in wanted]


async def test_a_manager_reads_then_erases_a_customer_and_the_orders_stay(
    infra: Infra, orders_api: OrdersApi
) -> None:
    api, manager = orders_api.client, orders_api.token(Role.MANAGER)
    customer = unique_customer()
    first = await orders_api.place(**order_of(customer))
    second = await orders_api.place(**order_of(customer, "pickup"))
    # Guest orders: each its own contact snapshot, and no id in the answers.
    assert first["customer_id"] is None and second["customer_id"] is None
    customer_id = await orders_api.customer_of(first["id"])
    second_id = await orders_api.customer_of(second["id"])
    assert second_id != customer_id
    confirmed = await api.post(f"/orders/{first['id']}/confirm", headers=manager)
    assert confirmed.status_code == 200, confirmed.text

    stored = await api.get(f"/customers/{customer_id}", headers=manager)
    assert stored.status_code == 200, stored.text
    details = stored.json()
    assert details["id"] == customer_id
    assert details["guest"] is True
    assert details["name"] == customer["name"]
    assert details["phone"] == customer["phone"].replace(" ", "")
    assert details["email"] == customer["email"]
    assert details["address"] == customer["address"]

    erased = await api.delete(f"/customers/{customer_id}", headers=manager)
    assert erased.status_code == 204, erased.text
    assert erased.content == b""
    # Gone: what is left is when it was erased, nothing about the person.
    after = await api.get(f"/customers/{customer_id}", headers=manager)
    assert after.status_code == 410, after.text
    assert set(after.json()) == {"detail", "erased_at"}
    assert after.json()["erased_at"] is not None

    again = await api.delete(f"/customers/{customer_id}", headers=manager)
    assert again.status_code == 204, again.text
    assert (await api.get(f"/customers/{customer_id}", headers=manager)).json() == after.json()

    # The orders are untouched and still point at their (now anonymous) snapshots; the other
    # snapshot of the same details is erased on its own, by its id.
    for placed, snapshot in ((first, customer_id), (second, second_id)):
        order = await api.get(f"/orders/{placed['id']}", headers=orders_api.token(Role.CHEF))
        assert order.status_code == 200, order.text
        assert order.json()["customer_id"] == snapshot
        assert order.json()["lines"] == placed["lines"]
        tracked = await api.get(
            f"/orders/{placed['id']}", headers={"X-Tracking-Token": str(placed["tracking_token"])}
        )
        assert tracked.status_code == 200
        assert tracked.json()["customer_id"] is None
    assert (await api.get(f"/orders/{first['id']}", headers=manager)).json()["status"] == (
        "confirmed"
    )
    assert (await api.get(f"/customers/{second_id}", headers=manager)).status_code == 200

    # The same person ordering again is a new snapshot: the erased one is not brought back.
    returning = await orders_api.place(**order_of(customer))
    assert await orders_api.customer_of(returning["id"]) not in (customer_id, second_id)

    order_ids = {str(first["id"]), str(second["id"]), str(returning["id"])}
    relay = relay_process(infra, orders_api.database_url, name="relay-customers-api")
    relay.start()
    try:
        await relay.wait_ready()
        contacts = await read_topic(
            infra.kafka_bootstrap,
            CUSTOMER_CONTACTS.name,
            until=lambda rs: any(r.value is None for r in of_keys(rs, {customer_id})),
            timeout=60,
        )
        # placed, confirmed / placed / placed
        orders = await read_topic(
            infra.kafka_bootstrap,
            ORDERS.name,
            until=lambda rs: len(of_keys(rs, order_ids)) >= 4,
            timeout=60,
        )
    finally:
        relay.terminate()

    # Contacts topic: the snapshot's details, then one tombstone, and nothing after it.
    history = of_keys(contacts, {customer_id})
    assert len(history) == 2, [(r.value, r.headers) for r in history]
    contact, tombstone = history
    assert json.loads(contact.value)["name"] == customer["name"]
    assert dict(contact.headers)["ce_type"] == b"com.mariospizzeria.customer.contact_updated.v1"
    assert tombstone.value is None
    assert tombstone.key == customer_id.encode()
    assert [name for name, _ in tombstone.headers] == ["ce_id"]
    assert tombstone.partition == contact.partition
    assert tombstone.offset > contact.offset

    # Orders topic: no record of these orders carries any of the customer's details.
    published = of_keys(orders, order_ids)
    assert len(published) >= 4
    secrets = [
        customer["name"],
        customer["phone"],
        customer["phone"].replace(" ", ""),
        customer["email"],
        customer["address"],
    ]
    for record in published:
        blob = (record.key or b"") + (record.value or b"")
        blob += b"".join(name.encode() + value for name, value in record.headers)
        for secret in secrets:
            assert secret.encode() not in blob, f"{secret!r} on {ORDERS.name}: {blob!r}"
    # The pseudonymous id is how order events refer to the customer.
    payloads = [json.loads(r.value) for r in of_keys(published, {str(first["id"])})]
    assert {p["customer_id"] for p in payloads if "customer_id" in p} == {customer_id}


async def test_customer_endpoints_are_for_managers_only(orders_api: OrdersApi) -> None:
    placed = await orders_api.place(**order_of(unique_customer()))
    customer_id = await orders_api.customer_of(placed["id"])
    url = f"/customers/{customer_id}"
    api = orders_api.client
    calls: tuple[Callable[[dict[str, str] | None], Awaitable[httpx.Response]], ...] = (
        lambda headers: api.get(url, headers=headers),
        lambda headers: api.delete(url, headers=headers),
        lambda headers: api.patch(url, json={"name": "Mallory"}, headers=headers),
    )
    for call in calls:
        assert (await call(None)).status_code == 401
        for role in (Role.CHEF, Role.DRIVER, Role.ANALYST):
            response = await call(orders_api.token(role))
            assert response.status_code == 403, (role, response.text)
        # Not even a customer token whose subject is that very id.
        response = await call(orders_api.token(Role.CUSTOMER, subject=customer_id))
        assert response.status_code == 403, response.text
    stored = await api.get(url, headers=orders_api.token(Role.MANAGER))
    assert stored.status_code == 200, stored.text  # the refused calls changed nothing
    assert stored.json()["name"] != "Mallory"


async def test_an_unknown_customer_is_not_found(orders_api: OrdersApi) -> None:
    manager = orders_api.token(Role.MANAGER)
    url = f"/customers/{uuid.uuid4()}"
    for response in (
        await orders_api.client.get(url, headers=manager),
        await orders_api.client.delete(url, headers=manager),
    ):
        assert response.status_code == 404, response.text
        assert "no customer" in response.json()["detail"]
    with_nul = await orders_api.client.get("/customers/a%00b", headers=manager)
    assert with_nul.status_code == 400, with_nul.text
    malformed = await orders_api.client.get("/customers/a%01b", headers=manager)
    assert malformed.status_code == 422, malformed.text


async def test_guest_orders_with_one_phone_make_one_snapshot_each(
    orders_api: OrdersApi,
) -> None:
    customer = unique_customer()
    body = order_of({"name": customer["name"], "phone": customer["phone"]}, "pickup")
    responses = await asyncio.gather(
        *(orders_api.client.post("/orders", json=body) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert {r.json()["customer_id"] for r in responses} == {None}
    snapshots = {await orders_api.customer_of(r.json()["id"]) for r in responses}
    assert len(snapshots) == 10
