"""Customers (manager): reading what is stored, erasure with a tombstone on the contacts topic,
and a phone and an email of two different customers."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

from aiokafka import ConsumerRecord

from eventing.auth import Role
from eventing.topics import CUSTOMER_CONTACTS, ORDERS
from tests.integration.orders.conftest import OrdersApi
from tests.support.infra import Infra
from tests.support.kafka import read_topic
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


def order_of(customer: dict[str, str], fulfilment: str = "delivery") -> dict[str, object]:
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
    customer_id = str(first["customer_id"])
    assert second["customer_id"] == customer_id
    confirmed = await api.post(f"/orders/{first['id']}/confirm", headers=manager)
    assert confirmed.status_code == 200, confirmed.text

    stored = await api.get(f"/customers/{customer_id}", headers=manager)
    assert stored.status_code == 200, stored.text
    details = stored.json()
    assert details["id"] == customer_id
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

    # The orders are untouched and still point at the (now anonymous) customer.
    for placed in (first, second):
        order = await api.get(f"/orders/{placed['id']}", headers=orders_api.token(Role.CHEF))
        assert order.status_code == 200, order.text
        assert order.json()["customer_id"] == customer_id
        assert order.json()["lines"] == placed["lines"]
        tracked = await api.get(
            f"/orders/{placed['id']}", headers={"X-Tracking-Token": str(placed["tracking_token"])}
        )
        assert tracked.status_code == 200
    assert (await api.get(f"/orders/{first['id']}", headers=manager)).json()["status"] == (
        "confirmed"
    )

    # The same person ordering again is a new customer: the erased one is not brought back.
    returning = await orders_api.place(**order_of(customer))
    assert returning["customer_id"] != customer_id

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

    # Contacts topic: the details, then one tombstone, and nothing after it for this id.
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
    url = f"/customers/{placed['customer_id']}"
    api = orders_api.client
    for method in (api.get, api.delete):
        assert (await method(url)).status_code == 401
        for role in (Role.CHEF, Role.DRIVER, Role.CUSTOMER, Role.ANALYST):
            response = await method(url, headers=orders_api.token(role))
            assert response.status_code == 403, (method, role, response.text)
    stored = await api.get(url, headers=orders_api.token(Role.MANAGER))
    assert stored.status_code == 200, stored.text  # the refused DELETEs erased nothing


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


async def test_phone_of_one_customer_and_email_of_another_is_refused(
    orders_api: OrdersApi,
) -> None:
    one, other = unique_customer(), unique_customer()
    by_phone = await orders_api.place(
        **order_of({"name": one["name"], "phone": one["phone"]}, "pickup")
    )
    by_email = await orders_api.place(
        **order_of({"name": other["name"], "email": other["email"]}, "pickup")
    )
    mixed = {"name": "Someone", "phone": one["phone"], "email": other["email"]}
    response = await orders_api.client.post("/orders", json=order_of(mixed, "pickup"))
    assert response.status_code == 422, response.text
    assert "two different customers" in response.json()["detail"]

    manager = orders_api.token(Role.MANAGER)
    for placed, name in ((by_phone, one["name"]), (by_email, other["name"])):
        stored = await orders_api.client.get(f"/customers/{placed['customer_id']}", headers=manager)
        assert stored.json()["name"] == name  # neither customer was changed
    # Either detail alone still finds its own customer.
    again = await orders_api.place(
        **order_of({"name": one["name"], "phone": one["phone"]}, "pickup")
    )
    assert again["customer_id"] == by_phone["customer_id"]


async def test_concurrent_first_orders_with_one_phone_make_one_customer(
    orders_api: OrdersApi,
) -> None:
    customer = unique_customer()
    body = order_of({"name": customer["name"], "phone": customer["phone"]}, "pickup")
    responses = await asyncio.gather(
        *(orders_api.client.post("/orders", json=body) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.json()["customer_id"] for r in responses}) == 1
