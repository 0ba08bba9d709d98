"""The orders service turns the kitchen's events into order status, and refuses contradictions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from contracts.topics import DEAD_LETTERS
from eventing.deadletter import read_dead_letters
from eventing.events import EventData
from orders.entrypoints.api import create_app
from orders.settings import OrdersSettings
from service_kit.auth import Role
from tests.integration.orders.conftest import OrdersApi
from tests.support.eventing import publish_event
from tests.support.infra import Infra
from tests.support.system import migrated_database


@pytest.fixture
async def consuming_orders_api(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OrdersApi]:
    """The orders API with its kitchen-event consumer in a group of its own, from "now"."""
    group = f"orders-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ORDERS_CONSUMER_AUTO_OFFSET_RESET", "latest")
    url = await migrated_database(infra, "orders")
    settings = OrdersSettings(
        database_url=url, kafka_bootstrap_servers=infra.kafka_bootstrap, consumer_group=group
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders"
        ) as client,
    ):
        deadline = asyncio.get_running_loop().time() + 30
        while (await client.get("/readyz")).status_code != 200:  # assigned before we produce
            assert asyncio.get_running_loop().time() < deadline, "consumer never got partitions"
            await asyncio.sleep(0.2)
        api = OrdersApi(client, url)
        api.group = group  # type: ignore[attr-defined]
        yield api


async def kitchen_says(infra: Infra, event: EventData, order_id: str) -> None:
    """What the kitchen service publishes when a cook acts."""
    await publish_event(infra, event, key=order_id, source="/mariospizzeria/kitchen")


async def status_becomes(api: OrdersApi, order_id: str, token: str, status: str) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        current = (
            await api.client.get(f"/orders/{order_id}", headers={"X-Tracking-Token": token})
        ).json()
        if current["status"] == status:
            return
        assert asyncio.get_running_loop().time() < deadline, f"stayed {current['status']}"
        await asyncio.sleep(0.1)


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
    await status_becomes(api, order_id, token, "cooking")
    await kitchen_says(
        infra, KitchenOrderReady(order_id=order_id, ready_at=datetime.now(UTC)), order_id
    )
    await status_becomes(api, order_id, token, "ready")
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
    group = api.group  # type: ignore[attr-defined]
    deadline = asyncio.get_running_loop().time() + 20
    while not (
        letters := await read_dead_letters(
            infra.kafka_bootstrap, topic=DEAD_LETTERS.name, group=group
        )
    ):
        assert asyncio.get_running_loop().time() < deadline, "no dead letter"
        await asyncio.sleep(0.5)
    [letter] = letters
    assert letter.handler == "orders.kitchen_cooking_started"
    assert "cannot start cooking an order that is cancelled" in letter.reason
    order = (
        await api.client.get(f"/orders/{order_id}", headers={"X-Tracking-Token": token})
    ).json()
    assert order["status"] == "cancelled"
