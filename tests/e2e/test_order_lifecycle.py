"""An order's whole life through HTTP and Kafka: placed, confirmed, cooked (kitchen events),
ready, out for delivery, delivered — and no personal data outside the contacts topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from contracts.topics import ALL_TOPICS, CUSTOMER_CONTACTS, ORDERS
from service_kit.auth import Role
from tests.support.infra import Infra
from tests.support.kafka import read_topic, read_whole_topic
from tests.support.orders import kitchen_says, order_status_becomes
from tests.support.system import System
from tests.support.tokens import staff

CUSTOMER = {
    "name": "Lucia Bianchi",
    "phone": "+39 333 987 6543",
    "email": "lucia.bianchi@example.com",
    "address": "Via dei Fori Imperiali 7, Roma",
}


async def test_the_whole_lifecycle_publishes_exactly_the_expected_events(
    system: System, infra: Infra
) -> None:
    async with httpx.AsyncClient(base_url=system.url("orders"), timeout=10) as client:
        placed = await client.post(
            "/orders",
            json={
                "customer": CUSTOMER,
                "lines": [{"pizza": "Pepperoni", "size": "large", "quantity": 1}],
            },
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        # A guest order: its answer names no customer; staff see the snapshot's id.
        assert placed.json()["customer_id"] is None
        manager = staff(Role.MANAGER, subject="manager-anna")
        as_staff = await client.get(f"/orders/{order_id}", headers=manager)
        customer_id = as_staff.json()["customer_id"]
        owner = {"X-Tracking-Token": placed.json()["tracking_token"]}
        url = f"/orders/{order_id}"

        assert (await client.post(f"{url}/confirm", headers=owner)).json()["status"] == "confirmed"
        now = datetime.now(UTC)
        await kitchen_says(
            infra,
            KitchenCookingStarted(order_id=order_id, cook="chef-mario", started_at=now),
            order_id,
        )
        await order_status_becomes(client, order_id, owner, "cooking")
        await kitchen_says(
            infra, KitchenOrderReady(order_id=order_id, ready_at=datetime.now(UTC)), order_id
        )
        await order_status_becomes(client, order_id, owner, "ready")
        driver = staff(Role.DRIVER, subject="driver-luigi")
        departed = await client.post(f"{url}/departure", headers=driver)
        assert departed.json()["status"] == "out_for_delivery", departed.text
        delivered = await client.post(f"{url}/delivery", headers=driver)
        assert delivered.json()["status"] == "delivered", delivered.text

    expected = [
        "com.mariospizzeria.order.placed.v1",
        "com.mariospizzeria.order.confirmed.v1",
        "com.mariospizzeria.order.cooking_started.v1",
        "com.mariospizzeria.order.ready.v1",
        "com.mariospizzeria.order.out_for_delivery.v1",
        "com.mariospizzeria.order.delivered.v1",
    ]

    def of_order(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == order_id.encode()]

    records = of_order(
        await read_topic(
            infra.kafka_bootstrap, ORDERS.name, until=lambda rs: len(of_order(rs)) >= len(expected)
        )
    )
    headers = [dict(r.headers) for r in records]
    assert [h["ce_type"].decode() for h in headers] == expected
    assert [h["ce_aggregateversion"].decode() for h in headers] == ["1", "2", "3", "4", "5", "6"]
    assert len({r.partition for r in records}) == 1
    assert json.loads(records[-1].value)["driver_id"] == "driver-luigi"

    # Personal data travels only on the restricted contacts topic, keyed by the pseudonymous id.
    contacts = await read_topic(
        infra.kafka_bootstrap,
        CUSTOMER_CONTACTS.name,
        until=lambda rs: any(r.key == customer_id.encode() for r in rs),
    )
    [contact] = [r for r in contacts if r.key == customer_id.encode()]
    assert json.loads(contact.value)["name"] == CUSTOMER["name"]
    secrets = [CUSTOMER["name"], "987 6543", "9876543", CUSTOMER["email"], "Fori Imperiali"]
    checked = 0
    for topic in ALL_TOPICS:
        if topic.restricted:  # the contacts topic and its own dead-letter topic
            continue
        for record in await read_whole_topic(infra.kafka_bootstrap, topic.name):
            checked += 1
            blob = (record.value or b"") + b"".join(v or b"" for _, v in record.headers)
            for secret in secrets:
                assert secret.encode() not in blob, f"{secret!r} leaked on {topic.name}"
    assert checked >= len(expected) + 2  # this order's events and the kitchen's were read
