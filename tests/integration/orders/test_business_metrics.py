"""The orders service's business metrics move after commits, as /metrics shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from tests.support.infra import Infra
from tests.support.metrics import scrape, value
from tests.support.orders import OrdersApi, kitchen_says, order_status_becomes


async def test_placing_and_changing_orders_moves_the_business_metrics(
    orders_api: OrdersApi,
) -> None:
    before = await scrape(orders_api.client)
    placed = await orders_api.place(
        lines=[{"pizza": "Margherita", "size": "large", "quantity": 2}], fulfilment="pickup"
    )
    order_url = f"/orders/{placed['id']}"
    owner = {"X-Tracking-Token": str(placed["tracking_token"])}
    assert (await orders_api.client.post(f"{order_url}/confirm", headers=owner)).status_code == 200
    # A refused step commits nothing and counts nothing.
    assert (await orders_api.client.post(f"{order_url}/confirm", headers=owner)).status_code == 409
    cancelled = await orders_api.client.post(
        f"{order_url}/cancel", json={"reason": "changed my mind"}, headers=owner
    )
    assert cancelled.status_code == 200
    after = await scrape(orders_api.client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("orders_placed_total") == 1
    assert moved("orders_transitions_total", to_status="pending") == 1
    assert moved("orders_transitions_total", to_status="confirmed") == 1
    assert moved("orders_transitions_total", to_status="cancelled") == 1
    assert moved("orders_transitions_total", to_status="cooking") == 0
    assert moved("order_value_euros_count") == 1
    assert moved("order_value_euros_sum") == pytest.approx(float(str(placed["total"])))


async def test_an_idempotent_retry_is_not_a_new_order(orders_api: OrdersApi) -> None:
    body = {
        "customer": {"name": "Luca Bianchi", "phone": "+39 06 8765 4321", "address": "Via Po 2"},
        "lines": [{"pizza": "Margherita", "size": "small", "quantity": 1}],
    }
    key = {"Idempotency-Key": str(uuid.uuid4())}
    before = await scrape(orders_api.client)
    first = await orders_api.client.post("/orders", json=body, headers=key)
    retry = await orders_api.client.post("/orders", json=body, headers=key)
    assert (first.status_code, retry.status_code) == (201, 200)
    after = await scrape(orders_api.client)
    assert value(after, "orders_placed_total") - value(before, "orders_placed_total") == 1
    assert value(after, "order_value_euros_count") - value(before, "order_value_euros_count") == 1


async def test_transitions_from_kitchen_events_are_counted_after_the_consumer_commits(
    infra: Infra,
    consuming_orders_api: OrdersApi,
) -> None:
    api = consuming_orders_api
    placed = await api.place(fulfilment="pickup")
    order_id, token = str(placed["id"]), str(placed["tracking_token"])
    confirmed = await api.client.post(
        f"/orders/{order_id}/confirm", headers={"X-Tracking-Token": token}
    )
    assert confirmed.status_code == 200
    before = await scrape(api.client)
    await kitchen_says(
        infra,
        KitchenCookingStarted(order_id=order_id, cook="chef-1", started_at=datetime.now(UTC)),
        order_id,
    )
    await order_status_becomes(api.client, order_id, {"X-Tracking-Token": token}, "cooking")
    await kitchen_says(
        infra, KitchenOrderReady(order_id=order_id, ready_at=datetime.now(UTC)), order_id
    )
    await order_status_becomes(api.client, order_id, {"X-Tracking-Token": token}, "ready")
    after = await scrape(api.client)
    for status in ("cooking", "ready"):
        moved = value(after, "orders_transitions_total", to_status=status) - value(
            before, "orders_transitions_total", to_status=status
        )
        assert moved == 1, status
