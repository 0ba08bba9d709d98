"""The kitchen display (``GET /display``) in a real browser, against the whole running system.

Orders are placed and confirmed through the orders API; their tickets must appear on the open
page without a reload (the page listens to ``/queue/stream``). A cook signs in with a token and
presses Start and Ready; the orders API then reports the order as cooking. A screenshot of a busy
board is saved to test-artifacts/kitchen-display.png.

The browser is Debian's Chromium at /usr/bin/chromium (``deploy/local/stack.sh install`` puts it
there); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from eventing.auth import AuthSettings, Role, mint_token
from tests.support.infra import ROOT, Infra
from tests.support.system import System, start_system

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "test-artifacts" / "kitchen-display.png"
LIVE_UPDATE_MS = 2_000  # a confirmed order must be on the page this soon, without a reload
MOVE_MS = 5_000  # a ticket moves column after a cook's press

CUSTOMER = {
    "name": "Giulia Rossi",
    "phone": "+39 06 1234 5678",
    "address": "Via Roma 1, 00100 Roma",
}
# Varied orders, so the screenshot shows sizes, quantities, extra toppings and both fulfilments.
ORDERS: list[dict[str, Any]] = [
    {
        "lines": [
            {"pizza": "Margherita", "size": "large", "quantity": 2, "toppings": ["olives"]},
            {"pizza": "Pepperoni", "size": "small", "quantity": 1},
        ],
        "fulfilment": "delivery",
    },
    {"lines": [{"pizza": "Hawaiian", "size": "medium", "quantity": 1}], "fulfilment": "pickup"},
    {
        "lines": [
            {"pizza": "Vegetarian", "size": "large", "quantity": 1, "toppings": ["feta", "basil"]}
        ],
        "fulfilment": "delivery",
    },
    {"lines": [{"pizza": "BBQ Chicken", "size": "medium", "quantity": 2}], "fulfilment": "pickup"},
    {
        "lines": [
            {"pizza": "Meat Lovers", "size": "large", "quantity": 1, "toppings": ["jalapeños"]},
            {"pizza": "Margherita", "size": "small", "quantity": 1},
        ],
        "fulfilment": "delivery",
    },
    {"lines": [{"pizza": "Pepperoni", "size": "large", "quantity": 1}], "fulfilment": "pickup"},
]


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    # Consumer groups of their own, starting at the end of the topics: on a reused test broker
    # another session's kitchen or orders process in the default groups would otherwise share
    # the partitions (and take some of our orders' events), and a new group reading from the
    # beginning would fill the board with every order earlier runs left on the topics.
    run = uuid.uuid4().hex[:8]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KITCHEN_CONSUMER_GROUP", f"kitchen-display-test-{run}")
        env.setenv("KITCHEN_CONSUMER_AUTO_OFFSET_RESET", "latest")
        env.setenv("ORDERS_CONSUMER_GROUP", f"orders-display-test-{run}")
        env.setenv("ORDERS_CONSUMER_AUTO_OFFSET_RESET", "latest")
        running = await start_system(infra)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `deploy/local/stack.sh install` (as root)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def place_and_confirm(client: httpx.AsyncClient, order: dict[str, Any]) -> tuple[str, str]:
    """Place ``order`` and confirm it; returns its id and tracking token."""
    placed = await client.post("/orders", json={"customer": CUSTOMER, **order})
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["id"]
    token: str = placed.json()["tracking_token"]
    owner = {"X-Tracking-Token": token}
    confirmed = await client.post(f"/orders/{order_id}/confirm", headers=owner)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    return order_id, token


async def order_status_becomes(
    client: httpx.AsyncClient, order_id: str, token: str, wanted: str, seconds: float = 10
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        response = await client.get(f"/orders/{order_id}", headers={"X-Tracking-Token": token})
        assert response.status_code == 200, response.text
        current = response.json()["status"]
        if current == wanted:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"order {order_id} is still {current!r} after {seconds}s")
        await asyncio.sleep(0.2)


def card(page: Page, column: str, order_id: str) -> Locator:
    return page.locator(f'#col-{column} [data-order-id="{order_id}"]')


async def press(page: Page, column: str, order_id: str, button: str, moves_to: str) -> None:
    await card(page, column, order_id).get_by_role("button", name=button).click()
    await expect(card(page, moves_to, order_id)).to_be_visible(timeout=MOVE_MS)
    await expect(card(page, column, order_id)).to_have_count(0)


async def test_the_display_follows_the_kitchen_live_and_lets_a_cook_act(
    system: System, browser: Browser
) -> None:
    context = await browser.new_context(viewport={"width": 1600, "height": 1200})
    page = await context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    navigations: list[str] = []
    page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
    )
    kitchen = system.url("kitchen")
    try:
        response = await page.goto(f"{kitchen}/display")
        assert response is not None
        assert response.ok
        for heading in ("Queued", "Cooking", "Ready"):
            await expect(page.get_by_role("heading", name=heading)).to_be_visible()
        # Connected: the "disconnected" banner goes away once the stream has sent the queue.
        await expect(page.locator("#banner")).to_be_hidden(timeout=10_000)
        await page.evaluate("window.__sameDocument = true")
        loaded = list(navigations)

        async with (
            httpx.AsyncClient(base_url=system.url("orders"), timeout=10) as orders,
            httpx.AsyncClient(base_url=kitchen, timeout=10) as kitchen_api,
        ):
            # 1. A confirmed order appears on the open page by itself, within two seconds.
            first, first_token = await place_and_confirm(orders, ORDERS[0])
            queued = card(page, "queued", first)
            await expect(queued).to_be_visible(timeout=LIVE_UPDATE_MS)
            assert navigations == loaded, f"the page navigated: {navigations[len(loaded) :]}"
            assert await page.evaluate("window.__sameDocument") is True
            await expect(queued).to_contain_text("Margherita")
            await expect(queued).to_contain_text("large")
            await expect(queued).to_contain_text("olives")
            await expect(queued.get_by_role("button", name="Start")).to_be_disabled()

            # 2. A cook signs in; Start moves the card to Cooking and the order is cooking.
            token = mint_token(AuthSettings(), subject="chef-mario", roles=[Role.CHEF])
            await page.get_by_label("Cook token").fill(token)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#who-name")).to_have_text("chef-mario")
            await press(page, "queued", first, "Start", moves_to="cooking")
            await expect(card(page, "cooking", first)).to_contain_text("chef-mario")
            await order_status_becomes(orders, first, first_token, "cooking")

            # 3. More orders; Ready on the first; then fill the kitchen to its capacity.
            capacity = (await kitchen_api.get("/queue")).json()["capacity"]
            assert isinstance(capacity, int)
            assert capacity >= 1
            # The first goes to Ready, `capacity` fill the ovens, two stay queued.
            others = [
                (await place_and_confirm(orders, ORDERS[1 + n % (len(ORDERS) - 1)]))[0]
                for n in range(capacity + 2)
            ]
            for order_id in others:
                await expect(card(page, "queued", order_id)).to_be_visible(timeout=LIVE_UPDATE_MS)
            await press(page, "cooking", first, "Ready", moves_to="ready")
            started = 0
            for order_id in others:
                queue = (await kitchen_api.get("/queue")).json()
                if queue["cooking"] >= queue["capacity"]:
                    break
                await press(page, "queued", order_id, "Start", moves_to="cooking")
                started += 1
            assert started >= 1
            await expect(page.locator("#capacity-text")).to_contain_text(
                f"{capacity} of {capacity} cooking"
            )

            # 4. One more Start is refused: the API's 409 reason shows in the message area.
            refused = others[started]
            await card(page, "queued", refused).get_by_role("button", name="Start").click()
            direct = await kitchen_api.post(
                f"/tickets/{refused}/start", headers={"Authorization": f"Bearer {token}"}
            )
            assert direct.status_code == 409, direct.text
            await expect(page.locator("#messages")).to_contain_text(direct.json()["detail"])
            await expect(card(page, "queued", refused)).to_be_visible()

            assert navigations == loaded, f"the page navigated: {navigations[len(loaded) :]}"
            await page.wait_for_timeout(1_100)  # let the ages tick once more
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert script_errors == [], script_errors
    finally:
        await context.close()
