"""The orders service turns the kitchen's events into order status, and refuses contradictions."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from contracts.topics import DEAD_LETTERS
from eventing.deadletter import read_dead_letters
from service_kit.auth import Role
from tests.support.infra import Infra
from tests.support.orders import OrdersApi, kitchen_says, order_status_becomes
from tests.support.polling import eventually


async def test_kitchen_events_cook_an_order_then_the_customer_picks_it_up(
    infra: Infra, consuming_orders_api: OrdersApi
) -> None:
    api = consuming_orders_api
    placed = await api.place(fulfilment="pickup")
    order_id, token = str(placed["id"]), str(placed["tracking_token"])
    assert (
        await api.client.post(f"/orders/{order_id}/confirm", headers={"X-Tracking-Token": token})
    ).status_code == 200
    now = datetime.now(UTC)
    await kitchen_says(
        infra, KitchenCookingStarted(order_id=order_id, cook="chef-1", started_at=now), order_id
    )
    await order_status_becomes(api.client, order_id, {"X-Tracking-Token": token}, "cooking")
    await kitchen_says(
        infra, KitchenOrderReady(order_id=order_id, ready_at=datetime.now(UTC)), order_id
    )
    await order_status_becomes(api.client, order_id, {"X-Tracking-Token": token}, "ready")
    departed = await api.client.post(
        f"/orders/{order_id}/departure", headers=api.token(Role.DRIVER)
    )
    assert departed.status_code == 409  # a pickup order never goes out with a driver
    picked = await api.client.post(f"/orders/{order_id}/pickup", headers=api.token(Role.CHEF))
    assert picked.status_code == 200, picked.text
    assert picked.json()["status"] == "picked_up"
    assert picked.json()["version"] == 5


async def test_cooking_a_cancelled_order_is_dead_lettered_with_the_reason(
    infra: Infra, consuming_orders_api: OrdersApi
) -> None:
    api = consuming_orders_api
    placed = await api.place()
    order_id, token = str(placed["id"]), str(placed["tracking_token"])
    cancelled = await api.client.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "no longer hungry"},
        headers={"X-Tracking-Token": token},
    )
    assert cancelled.status_code == 200
    await kitchen_says(
        infra,
        KitchenCookingStarted(order_id=order_id, cook="chef-1", started_at=datetime.now(UTC)),
        order_id,
    )
    group = api.consumer_group
    assert group is not None
    [letter] = await eventually(
        lambda: read_dead_letters(infra.kafka_bootstrap, topic=DEAD_LETTERS.name, group=group),
        timeout=20,
        interval=0.5,
        what="a dead letter",
    )
    assert letter.handler == "orders.kitchen_cooking_started"
    assert "cannot start cooking an order that is cancelled" in letter.reason
    order = (
        await api.client.get(f"/orders/{order_id}", headers={"X-Tracking-Token": token})
    ).json()
    assert order["status"] == "cancelled"
