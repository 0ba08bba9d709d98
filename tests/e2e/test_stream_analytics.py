"""The event stream as a product, end to end: orders placed, cooked and delivered through the
running system are tapped with ``pizzeria tap`` and charted on the analytics dashboard.

The tap must print the orders' CloudEvents with their Kafka coordinates, follow new ones live,
refuse the contacts topic, and leave no consumer group behind unless asked for one. The
dashboard (``GET /dashboard``) is opened in headless Chromium with an analyst token; its four
charts must have drawn data, and a screenshot is saved to test-artifacts/analytics-dashboard.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from playwright.async_api import Browser, expect

from service_kit.auth import Role
from tests.support.infra import ROOT, Infra
from tests.support.orders import order_status_becomes
from tests.support.polling import eventually
from tests.support.system import System, start_system
from tests.support.tokens import staff, staff_token

SCREENSHOT = ROOT / "test-artifacts" / "analytics-dashboard.png"
CUSTOMER = {"name": "Marco Verdi", "phone": "+39 02 5555 1234", "address": "Corso Como 9, Milano"}
ORDERS: list[dict[str, Any]] = [
    {"lines": [{"pizza": "Margherita", "size": "large", "quantity": 2}], "fulfilment": "delivery"},
    {"lines": [{"pizza": "Pepperoni", "size": "medium", "quantity": 1}], "fulfilment": "pickup"},
    {
        "lines": [{"pizza": "Hawaiian", "size": "small", "quantity": 3, "toppings": ["olives"]}],
        "fulfilment": "delivery",
    },
    {"lines": [{"pizza": "Vegetarian", "size": "medium", "quantity": 1}], "fulfilment": "pickup"},
]


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    # Consumer groups of their own, starting at the end of the topics (as the kitchen display's
    # test does): a reused test broker holds other runs' orders, which would otherwise be
    # worked through first.
    run = uuid.uuid4().hex[:8]
    with pytest.MonkeyPatch.context() as env:
        for service in ("orders", "kitchen", "notifications", "analytics"):
            prefix = service.upper()
            env.setenv(f"{prefix}_CONSUMER_GROUP", f"{service}-stream-test-{run}")
            env.setenv(f"{prefix}_CONSUMER_AUTO_OFFSET_RESET", "latest")
        running = await start_system(infra)
    try:
        yield running
    finally:
        running.stop()


async def place(orders: httpx.AsyncClient, order: dict[str, Any]) -> tuple[str, dict[str, str]]:
    placed = await orders.post("/orders", json={"customer": CUSTOMER, **order})
    assert placed.status_code == 201, placed.text
    owner = {"X-Tracking-Token": placed.json()["tracking_token"]}
    return placed.json()["id"], owner


@pytest.fixture(scope="module")
async def lifecycles(system: System) -> dict[str, str]:
    """Orders taken through their whole lives by the real services: order id -> final status."""
    chef = staff(Role.CHEF, subject="chef-paola")
    driver = staff(Role.DRIVER, subject="driver-gino")
    final: dict[str, str] = {}
    async with (
        httpx.AsyncClient(base_url=system.url("orders"), timeout=10) as orders,
        httpx.AsyncClient(base_url=system.url("kitchen"), timeout=10) as kitchen,
    ):
        for order in ORDERS:
            order_id, owner = await place(orders, order)
            confirmed = await orders.post(f"/orders/{order_id}/confirm", headers=owner)
            assert confirmed.status_code == 200, confirmed.text

            async def queued(order_id: str = order_id) -> bool:
                return (await kitchen.get(f"/tickets/{order_id}", headers=chef)).status_code == 200

            await eventually(queued, timeout=20, interval=0.2, what=f"ticket of {order_id}")
            started = await kitchen.post(f"/tickets/{order_id}/start", headers=chef)
            assert started.status_code == 200, started.text
            ready = await kitchen.post(f"/tickets/{order_id}/ready", headers=chef)
            assert ready.status_code == 200, ready.text
            await order_status_becomes(orders, order_id, owner, "ready", timeout=20)
            if order["fulfilment"] == "delivery":
                for step in ("departure", "delivery"):
                    done = await orders.post(f"/orders/{order_id}/{step}", headers=driver)
                    assert done.status_code == 200, done.text
                final[order_id] = "delivered"
            else:
                done = await orders.post(f"/orders/{order_id}/pickup", headers=chef)
                assert done.status_code == 200, done.text
                final[order_id] = "picked_up"
        cancelled, owner = await place(orders, ORDERS[0])
        response = await orders.post(
            f"/orders/{cancelled}/cancel", json={"reason": "ordered twice"}, headers=owner
        )
        assert response.status_code == 200, response.text
        final[cancelled] = "cancelled"

    analyst = staff(Role.ANALYST, subject="analyst-ada")
    async with httpx.AsyncClient(base_url=system.url("analytics"), timeout=10) as analytics:
        for order_id, status in final.items():

            async def projected(order_id: str = order_id, status: str = status) -> bool:
                response = await analytics.get(f"/orders/{order_id}", headers=analyst)
                return response.status_code == 200 and response.json()["status"] == status

            await eventually(
                projected, timeout=20, interval=0.2, what=f"analytics sees {order_id} {status}"
            )
    return final


def tap(infra: Infra, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contracts.cli", "--bootstrap-servers", infra.kafka_bootstrap,
         "tap", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=os.environ.copy(),
    )  # fmt: skip


async def consumer_groups(infra: Infra) -> set[str]:
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        return {group[0] for group in await admin.list_consumer_groups()}
    finally:
        await admin.close()


async def committed_offsets(infra: Infra, group: str) -> dict[Any, Any]:
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        offsets: dict[Any, Any] = await admin.list_consumer_group_offsets(group)
        return offsets
    finally:
        await admin.close()


async def test_the_tap_prints_a_real_run_as_json_lines_and_joins_no_group(
    lifecycles: dict[str, str], infra: Infra
) -> None:
    groups_before = await consumer_groups(infra)
    wanted = [arg for order_id in lifecycles for arg in ("--order-id", order_id)]
    result = await asyncio.to_thread(tap, infra, *wanted)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {event["key"] for event in events} == set(lifecycles)
    for event in events:
        assert event["specversion"] == "1.0" and event["data"]["order_id"] == event["key"]
        assert event["topic"] in ("pizzeria.orders", "pizzeria.kitchen")
        assert isinstance(event["partition"], int) and isinstance(event["offset"], int)
        assert event["time"] and event["source"].startswith("/mariospizzeria/")
    # No personal data: the customer's name, phone and address never appear.
    for value in CUSTOMER.values():
        assert value not in result.stdout
    delivered = next(order_id for order_id, status in lifecycles.items() if status == "delivered")
    own = [e for e in events if e["key"] == delivered]
    order_types = [e["type"].rsplit(".", 2)[-2] for e in own if e["topic"] == "pizzeria.orders"]
    assert order_types == [
        "placed", "confirmed", "cooking_started", "ready", "out_for_delivery", "delivered"
    ]  # fmt: skip
    versions = [e["aggregateversion"] for e in own if e["topic"] == "pizzeria.orders"]
    assert versions == ["1", "2", "3", "4", "5", "6"]
    kitchen_types = [e["type"].rsplit(".", 2)[-2] for e in own if e["topic"] == "pizzeria.kitchen"]
    # (Any kitchen running on this broker may add its own ticket events and estimate changes.)
    assert kitchen_types[0] == "ticket_queued"
    assert {"cooking_started", "order_ready"} <= set(kitchen_types)

    # Filters: by type, and by the events' time.
    placed_type = "com.mariospizzeria.order.placed.v1"
    only_placed = await asyncio.to_thread(tap, infra, *wanted, "--type", placed_type)
    placed = [json.loads(line) for line in only_placed.stdout.splitlines()]
    assert [e["type"] for e in placed] == [placed_type] * len(lifecycles)
    later = await asyncio.to_thread(tap, infra, *wanted, "--since", "2999-01-01T00:00Z")
    assert later.returncode == 0 and later.stdout == ""

    # The contacts topic (personal data) is refused.
    refused = await asyncio.to_thread(tap, infra, "--topic", "pizzeria.customer-contacts")
    assert refused.returncode == 2 and "personal data" in refused.stderr

    # Group-less by default: no consumer group was created (nor offsets committed).
    assert await consumer_groups(infra) == groups_before
    # With --group, that group (and only it) resumes from and commits its offsets.
    group = f"analytics-team-{uuid.uuid4().hex[:6]}"
    first = await asyncio.to_thread(tap, infra, *wanted, "--group", group)
    assert len(first.stdout.splitlines()) == len(events)
    assert await committed_offsets(infra, group)
    again = await asyncio.to_thread(tap, infra, *wanted, "--group", group)
    assert again.stdout == ""  # nothing new since the group's offsets


async def test_the_tap_follows_new_events_live(system: System, infra: Infra) -> None:
    async with httpx.AsyncClient(base_url=system.url("orders"), timeout=10) as orders:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "contracts.cli", "--bootstrap-servers", infra.kafka_bootstrap,
            "tap", "--from-end", "--follow", "--type", "com.mariospizzeria.order.placed.v1",
            stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            placed: set[str] = set()
            stdout = process.stdout
            loop = asyncio.get_running_loop()
            next_order = loop.time() + 1

            async def printed_a_new_order() -> bool:
                nonlocal next_order
                # The follower starts at the end: orders placed before it got there are not
                # printed, so place another every few seconds until one is.
                if loop.time() >= next_order:
                    placed.add((await place(orders, ORDERS[1]))[0])
                    next_order = loop.time() + 3
                try:
                    line = await asyncio.wait_for(stdout.readline(), timeout=1)
                except TimeoutError:
                    return False
                return bool(line) and json.loads(line)["key"] in placed

            await eventually(
                printed_a_new_order, timeout=30, interval=0, what="the tap printing a new order"
            )
        finally:
            process.terminate()
            await process.wait()


async def test_the_dashboard_charts_the_orders(
    lifecycles: dict[str, str], system: System, browser: Browser
) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1300})
    page = await context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    try:
        response = await page.goto(f"{system.url('analytics')}/dashboard")
        assert response is not None and response.ok
        assert "default-src 'none'" in (await response.all_headers())["content-security-policy"]
        token = staff_token(Role.ANALYST, subject="analyst-ada")
        await page.get_by_label("Analyst token").fill(token)
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=15_000)
        await expect(page.locator("#messages")).to_have_text("")
        for selector in (
            "#chart-orders rect.bar",
            "#chart-revenue rect.bar",
            "#chart-prep circle.point",
            "#chart-ontime rect.bar",
        ):
            assert await page.locator(selector).count() > 0, f"{selector}: nothing drawn"
        orders_shown = int(await page.locator("#kpi-orders").inner_text())
        assert orders_shown >= len(lifecycles)
        await expect(page.locator("#table-cooks")).to_contain_text("chef-paola")
        await expect(page.locator("#table-drivers")).to_contain_text("driver-gino")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert script_errors == [], script_errors
    finally:
        await context.close()
