"""An order placed through HTTP reaches Kafka and every consumer service, end to end."""

from __future__ import annotations

import json
from typing import Any

import httpx

from service_kit.auth import Role
from tests.support.http import answer
from tests.support.infra import Infra
from tests.support.kafka import read_topic
from tests.support.polling import eventually
from tests.support.system import System
from tests.support.tokens import staff


async def first_answer(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> Any:
    """The document at ``url`` once it is there (200, not empty)."""
    _, document = await eventually(
        lambda: answer(client, url, headers),
        until=lambda status_body: status_body[0] == 200 and bool(status_body[1]),
        timeout=10,
        what=url,
    )
    return document


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
        chef = staff(Role.CHEF, subject="chef-mario")
        ticket = await first_answer(client, f"{system.url('kitchen')}/tickets/{order_id}", chef)
        # The order's messages, for whoever holds its tracking token (OrderPlaced carried its
        # SHA-256 to the notifications service).
        messages_url = f"{system.url('notifications')}/orders/{order_id}/messages"
        tracking = {"X-Tracking-Token": order["tracking_token"]}
        # The confirmation's notice comes from the kitchen's topic, and may overtake this one:
        # there is no order between two topics.
        _, messages = await eventually(
            lambda: answer(client, messages_url, tracking),
            until=lambda status_body: (
                status_body[0] == 200
                and "order_received" in [message["kind"] for message in status_body[1]]
            ),
            timeout=20,
            what="the order's messages",
        )
        # Analytics answers analysts and managers only.
        analyst = staff(Role.ANALYST, subject="analyst-ada")
        fact = await first_answer(client, f"{system.url('analytics')}/orders/{order_id}", analyst)

    assert ticket["status"] == "queued" and ticket["pizzas"] == 3
    assert "order_received" in [message["kind"] for message in messages]
    # The same notice by email, to the address the order gave (through the contacts topic).
    assert system.sinks is not None
    smtp = system.sinks.smtp
    subject = f"We received your order {order_id[-8:]}"
    [email, *_] = await eventually(
        lambda: [email for email in smtp.received if email.subject == subject],
        what="an email about the order",
    )
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
