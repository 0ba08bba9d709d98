"""An order placed through HTTP reaches Kafka and every consumer service, end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from service_kit.auth import AuthSettings, Role, mint_token
from tests.support.infra import Infra
from tests.support.kafka import read_topic
from tests.support.system import System


async def eventually(
    client: httpx.AsyncClient, url: str, timeout: float = 10, headers: dict[str, str] | None = None
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(url, headers=headers)
        if response.status_code == 200 and response.json():
            return response.json()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} still answers {response.status_code} {response.text}")
        await asyncio.sleep(0.1)


async def test_an_order_reaches_every_service_through_kafka(system: System, infra: Infra) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{system.url('orders')}/orders",
            json={
                "customer": {"name": "Anna", "email": "anna@example.com", "address": "Via Po 3"},
                "lines": [
                    {"pizza": "Margherita", "size": "large", "quantity": 2, "toppings": ["olives"]},
                    {"pizza": "Hawaiian", "size": "small", "quantity": 1},
                ],
            },
        )
        assert response.status_code == 201, response.text
        order = response.json()
        order_id = order["id"]
        # large Margherita: 12.99 × 1.25 = 16.24 (half up) + 1.50 topping;
        # small Hawaiian: 14.99 × 0.8 = 11.99
        assert order["total"] == "47.47"

        # The kitchen queues a ticket once the order is confirmed, not when it is placed.
        confirmation = await client.post(
            f"{system.url('orders')}/orders/{order_id}/confirm",
            headers={"X-Tracking-Token": order["tracking_token"]},
        )
        assert confirmation.status_code == 200, confirmation.text
        chef = mint_token(AuthSettings(), subject="chef-mario", roles=[Role.CHEF])
        ticket = await eventually(
            client,
            f"{system.url('kitchen')}/tickets/{order_id}",
            headers={"Authorization": f"Bearer {chef}"},
        )
        # The order's messages, for whoever holds its tracking token (OrderPlaced carried its
        # SHA-256 to the notifications service).
        messages_url = f"{system.url('notifications')}/orders/{order_id}/messages"
        tracking = {"X-Tracking-Token": order["tracking_token"]}
        messages = await eventually(client, messages_url, headers=tracking)
        # The confirmation's notice comes from the kitchen's topic, and may overtake this one:
        # there is no order between two topics.
        deadline = asyncio.get_running_loop().time() + 10
        while "order_received" not in [message["kind"] for message in messages]:
            assert asyncio.get_running_loop().time() < deadline, messages
            await asyncio.sleep(0.1)
            messages = (await client.get(messages_url, headers=tracking)).json()
        # Analytics answers analysts and managers only.
        analyst = mint_token(AuthSettings(), subject="analyst-ada", roles=[Role.ANALYST])
        fact = await eventually(
            client,
            f"{system.url('analytics')}/orders/{order_id}",
            headers={"Authorization": f"Bearer {analyst}"},
        )

    assert ticket["status"] == "queued" and ticket["pizzas"] == 3
    assert "order_received" in [message["kind"] for message in messages]
    # The same notice by email, to the address the order gave (through the contacts topic).
    assert system.sinks is not None
    smtp = system.sinks.smtp
    subject = f"We received your order {order_id[-8:]}"
    deadline = asyncio.get_running_loop().time() + 30
    while not any(email.subject == subject for email in smtp.received):
        assert asyncio.get_running_loop().time() < deadline, "no email about the order"
        await asyncio.sleep(0.1)
    email = next(email for email in smtp.received if email.subject == subject)
    assert email.recipients == ["anna@example.com"]
    assert fact["total"] == "47.47" and fact["pizzas"] == 3

    records = await read_topic(
        infra.kafka_bootstrap,
        "pizzeria.orders",
        until=lambda rs: any(r.key == order_id.encode() for r in rs),
    )
    # The order's first record (its confirmation follows on the same partition).
    record = next(r for r in records if r.key == order_id.encode())
    headers = {name: value.decode() for name, value in record.headers}
    assert headers["ce_type"] == "com.mariospizzeria.order.placed.v1"
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_source"] == "/mariospizzeria/orders"
    assert headers["ce_subject"] == order_id
    assert headers["ce_partitionkey"] == order_id
    assert headers["content-type"] == "application/json"
    assert json.loads(record.value)["order_id"] == order_id
