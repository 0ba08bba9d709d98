"""The kitchen display (``GET /display``) in a real browser, against the whole running system.

The page shows nothing of the kitchen until a cook signs in: before, it asks the kitchen for
nothing at all, even with a ticket queued; a token the kitchen refuses sends it back to sign-in.
Once a cook is signed in, orders placed and confirmed through the orders API must appear on the
open page without a reload (the page reads ``/queue/stream`` with the cook's token), and the
cook presses Start and Ready; the orders API then reports the order as cooking. A screenshot of
a busy board is saved to test-artifacts/kitchen-display.png.

The browser is Debian's Chromium (tests/support/browser.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, Request, expect
from pydantic import SecretStr

from service_kit.auth import AuthSettings, Role, mint_token
from tests.support.infra import ROOT, Infra
from tests.support.orders import order_status_becomes
from tests.support.polling import eventually
from tests.support.system import System, start_system
from tests.support.tokens import authorization, staff_token

SCREENSHOT = ROOT / "test-artifacts" / "kitchen-display.png"
LIVE_UPDATE_MS = 2_000  # a confirmed order must be on the page this soon, without a reload
MOVE_MS = 5_000  # a ticket moves column after a cook's press
STREAM_SECONDS = 8  # the kitchen ends each stream after this long (KITCHEN_STREAM_MAX_SECONDS)

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
        # One display at a time, and streams that end every few seconds: the page must wait
        # for a free slot, and reconnect by itself while the test runs.
        env.setenv("KITCHEN_HTTP_MAX_STREAMS", "1")
        env.setenv("KITCHEN_STREAM_MAX_SECONDS", str(STREAM_SECONDS))
        running = await start_system(infra)
    try:
        yield running
    finally:
        running.stop()


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


async def _streams_opened(requests: list[Request], *, more_than: int) -> bool:
    return sum(r.url.endswith("/queue/stream") for r in requests) > more_than


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
    kitchen_requests: list[Request] = []  # what the page asked the kitchen's API for
    page.on(
        "request",
        lambda request: (
            kitchen_requests.append(request)
            if "/queue" in request.url or "/tickets" in request.url
            else None
        ),
    )
    token = staff_token(Role.CHEF, subject="chef-mario")
    chef = authorization(token)
    try:
        response = await page.goto(f"{kitchen}/display")
        assert response is not None
        assert response.ok
        await page.evaluate("window.__sameDocument = true")
        loaded = list(navigations)

        async with (
            httpx.AsyncClient(base_url=system.url("orders"), timeout=10) as orders,
            httpx.AsyncClient(base_url=kitchen, timeout=10) as kitchen_api,
        ):
            # 1. Signed out, the page shows nothing of the kitchen, even with a ticket queued:
            # no board, no request for it.
            first, first_token = await place_and_confirm(orders, ORDERS[0])

            async def queued_in_the_kitchen() -> bool:
                answer = await kitchen_api.get(f"/tickets/{first}", headers=chef)
                return answer.status_code == 200

            await eventually(
                queued_in_the_kitchen, timeout=20, interval=0.2, what="the ticket queued"
            )
            await expect(page.get_by_label("Cook token")).to_be_visible()
            await expect(page.locator("#signed-out")).to_be_visible()
            await expect(page.locator("#board")).to_be_hidden()
            await expect(page.locator("#banner")).to_be_hidden()
            assert await page.locator("[data-order-id]").count() == 0
            assert first not in await page.content()
            assert kitchen_requests == []

            # 2. A token that looks like a cook's but that the kitchen refuses (signed with
            # another secret): the page goes back to sign-in and says why.
            forged = mint_token(
                AuthSettings(jwt_secret=SecretStr("another-secret-that-is-long-enough-for-hs256")),
                subject="chef-impostor",
                roles=[Role.CHEF],
            )
            await page.get_by_label("Cook token").fill(forged)
            await page.get_by_role("button", name="Sign in", exact=True).click()
            await expect(page.locator("#messages")).to_contain_text("invalid token signature")
            await expect(page.get_by_label("Cook token")).to_be_visible()
            await expect(page.locator("#board")).to_be_hidden()
            assert await page.evaluate("sessionStorage.length") == 0
            assert first not in await page.content()

            # 3. A cook signs in while another display holds the kitchen's only stream slot:
            # the page says it cannot have the board yet, and retries until it can.
            async with kitchen_api.stream("GET", "/queue/stream", headers=chef) as other:
                assert other.status_code == 200
                lines = other.aiter_lines()
                assert (await anext(lines)).startswith("event: queue")
                await page.get_by_label("Cook token").fill(token)
                await page.get_by_role("button", name="Sign in", exact=True).click()
                await expect(page.locator("#who-name")).to_have_text("chef-mario")
                await expect(page.locator("#banner")).to_contain_text("cannot send the board now")
                await other.aclose()
            for heading in ("Queued", "Cooking", "Ready"):
                await expect(page.get_by_role("heading", name=heading)).to_be_visible()
            # The slot is free again: at its next try (back-off: 1, 2, 4 s) the page has it.
            queued = card(page, "queued", first)
            await expect(queued).to_be_visible(timeout=10_000)
            # Connected: the banner goes away once the stream has sent the queue.
            await expect(page.locator("#banner")).to_be_hidden()
            await expect(queued).to_contain_text("Margherita")
            await expect(queued).to_contain_text("large")
            await expect(queued).to_contain_text("olives")
            streams = [r for r in kitchen_requests if r.url.endswith("/queue/stream")]
            assert streams, [r.url for r in kitchen_requests]
            for request in streams[-1:]:  # the forged token's attempt came before
                assert (await request.all_headers())["authorization"] == f"Bearer {token}"
            assert await page.evaluate("sessionStorage.length") == 1

            # 4. A confirmed order appears on the open page by itself, within two seconds.
            second, _ = await place_and_confirm(orders, ORDERS[1])
            await expect(card(page, "queued", second)).to_be_visible(timeout=LIVE_UPDATE_MS)
            assert navigations == loaded, f"the page navigated: {navigations[len(loaded) :]}"
            assert await page.evaluate("window.__sameDocument") is True

            # 5. Start moves the card to Cooking and the order is cooking.
            await press(page, "queued", first, "Start", moves_to="cooking")
            await expect(card(page, "cooking", first)).to_contain_text("chef-mario")
            await order_status_becomes(
                orders, first, {"X-Tracking-Token": first_token}, "cooking", timeout=10
            )

            # 6. More orders; Ready on the first; then fill the kitchen to its capacity.
            capacity = (await kitchen_api.get("/queue", headers=chef)).json()["capacity"]
            assert isinstance(capacity, int)
            assert capacity >= 1
            # The first goes to Ready, `capacity` fill the ovens, two stay queued.
            others = [second] + [
                (await place_and_confirm(orders, ORDERS[1 + n % (len(ORDERS) - 1)]))[0]
                for n in range(capacity + 1)
            ]
            for order_id in others:
                await expect(card(page, "queued", order_id)).to_be_visible(timeout=LIVE_UPDATE_MS)
            await press(page, "cooking", first, "Ready", moves_to="ready")
            started = 0
            for order_id in others:
                queue = (await kitchen_api.get("/queue", headers=chef)).json()
                if queue["cooking"] >= queue["capacity"]:
                    break
                await press(page, "queued", order_id, "Start", moves_to="cooking")
                started += 1
            assert started >= 1
            await expect(page.locator("#capacity-text")).to_contain_text(
                f"{capacity} of {capacity} cooking"
            )

            # 7. One more Start is refused: the API's 409 reason shows in the message area.
            refused = others[started]
            await card(page, "queued", refused).get_by_role("button", name="Start").click()
            direct = await kitchen_api.post(f"/tickets/{refused}/start", headers=chef)
            assert direct.status_code == 409, direct.text
            await expect(page.locator("#messages")).to_contain_text(direct.json()["detail"])
            await expect(card(page, "queued", refused)).to_be_visible()

            # The kitchen ended the page's stream at least once by now; it reconnected by itself.
            await eventually(
                lambda: _streams_opened(kitchen_requests, more_than=len(streams)),
                timeout=3 * STREAM_SECONDS,
                interval=0.2,
                what="the page reconnected",
            )
            last, _ = await place_and_confirm(orders, ORDERS[0])
            await expect(card(page, "queued", last)).to_be_visible(timeout=LIVE_UPDATE_MS)
            await expect(page.locator("#banner")).to_be_hidden()

            assert navigations == loaded, f"the page navigated: {navigations[len(loaded) :]}"
            await page.wait_for_timeout(1_100)  # let the ages tick once more
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            # 8. Signing out takes the board off the screen and stops reading it.
            await page.get_by_role("button", name="Sign out").click()
            await expect(page.get_by_label("Cook token")).to_be_visible()
            await expect(page.locator("#board")).to_be_hidden()
            assert await page.locator("[data-order-id]").count() == 0
            assert await page.evaluate("sessionStorage.length") == 0
        assert script_errors == [], script_errors
    finally:
        await context.close()
