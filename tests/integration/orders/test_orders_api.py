"""The orders API: placement, tracking, staff list, lifecycle steps, auth and bad input."""

from __future__ import annotations

import asyncio
import uuid

from service_kit.auth import Role
from tests.support.orders import OrdersApi


async def test_place_then_read_with_the_tracking_token(orders_api: OrdersApi) -> None:
    placed = await orders_api.place()
    assert placed["status"] == "pending"
    assert placed["total"] == "12.99"
    assert placed["tracking_token"]
    token = {"X-Tracking-Token": str(placed["tracking_token"])}
    response = await orders_api.client.get(f"/orders/{placed['id']}", headers=token)
    assert response.status_code == 200
    assert response.json()["id"] == placed["id"]
    assert "tracking_token" not in response.json()
    assert "phone" not in response.text and "Giulia" not in response.text


async def test_reading_needs_the_token_or_a_staff_role(orders_api: OrdersApi) -> None:
    placed = await orders_api.place()
    url = f"/orders/{placed['id']}"
    assert (await orders_api.client.get(url)).status_code == 401
    # A token that does not fit is refused as no credentials, whether or not the order exists.
    wrong = await orders_api.client.get(url, headers={"X-Tracking-Token": "guess"})
    assert wrong.status_code == 401
    unknown = await orders_api.client.get(
        f"/orders/{uuid.uuid4()}", headers={"X-Tracking-Token": "guess"}
    )
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    assert (
        await orders_api.client.get(url, headers=orders_api.token(Role.CHEF))
    ).status_code == 200
    analyst = await orders_api.client.get(url, headers=orders_api.token(Role.ANALYST))
    assert analyst.status_code == 403  # an analyst is not staff for orders, and holds no token


async def test_idempotent_placement_20_concurrent_retries_make_one_order(
    orders_api: OrdersApi,
) -> None:
    key = str(uuid.uuid4())
    body = {
        "customer": {"name": "Marco", "email": "marco@example.com"},
        "lines": [{"pizza": "Hawaiian", "size": "small", "quantity": 2}],
        "fulfilment": "pickup",
    }
    responses = await asyncio.gather(
        *(
            orders_api.client.post("/orders", json=body, headers={"Idempotency-Key": key})
            for _ in range(20)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    [created] = [r.json() for r in responses if r.status_code == 201]
    assert created["tracking_token"]
    assert all(r.json()["tracking_token"] is None for r in responses if r.status_code == 200)
    changed = {**body, "lines": [{"pizza": "Hawaiian", "size": "large", "quantity": 2}]}
    conflict = await orders_api.client.post(
        "/orders", json=changed, headers={"Idempotency-Key": key}
    )
    assert conflict.status_code == 422
    assert "different request" in conflict.json()["detail"]


async def test_lifecycle_steps_and_refused_transitions(orders_api: OrdersApi) -> None:
    placed = await orders_api.place(fulfilment="pickup")
    order_url = f"/orders/{placed['id']}"
    owner = {"X-Tracking-Token": str(placed["tracking_token"])}
    confirmed = await orders_api.client.post(f"{order_url}/confirm", headers=owner)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    again = await orders_api.client.post(f"{order_url}/confirm", headers=owner)
    assert again.status_code == 409
    assert again.json()["current_status"] == "confirmed"
    pickup = await orders_api.client.post(
        f"{order_url}/pickup", headers=orders_api.token(Role.CHEF)
    )
    assert pickup.status_code == 409 and pickup.json()["current_status"] == "confirmed"
    cancelled = await orders_api.client.post(
        f"{order_url}/cancel", json={"reason": "changed my mind"}, headers=owner
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["cancel_reason"] == "changed my mind"


async def test_driver_steps_need_the_driver_role(orders_api: OrdersApi) -> None:
    placed = await orders_api.place()
    url = f"/orders/{placed['id']}/departure"
    assert (await orders_api.client.post(url)).status_code == 401
    assert (
        await orders_api.client.post(url, headers=orders_api.token(Role.CHEF))
    ).status_code == 403
    refused = await orders_api.client.post(url, headers=orders_api.token(Role.DRIVER))
    assert refused.status_code == 409  # still pending


async def test_staff_list_filters_and_pages(orders_api: OrdersApi) -> None:
    ids = [str((await orders_api.place())["id"]) for _ in range(5)]
    manager = orders_api.token(Role.MANAGER)
    assert (await orders_api.client.get("/orders")).status_code == 401
    assert (
        await orders_api.client.get("/orders", headers=orders_api.token(Role.ANALYST))
    ).status_code == 403
    first = (await orders_api.client.get("/orders?limit=3&status=pending", headers=manager)).json()
    second = (
        await orders_api.client.get(
            f"/orders?limit=3&status=pending&cursor={first['next_cursor']}", headers=manager
        )
    ).json()
    seen = [o["id"] for o in first["orders"] + second["orders"]]
    assert seen == list(reversed(ids))  # newest first, no overlap, nothing missing
    assert second["next_cursor"] is None
    none = (await orders_api.client.get("/orders?status=delivered", headers=manager)).json()
    assert none["orders"] == []


async def test_bad_input_is_422_with_field_messages(orders_api: OrdersApi) -> None:
    base = {
        "customer": {"name": "A", "phone": "+39 06 1234 5678", "address": "Via Roma 1"},
        "lines": [{"pizza": "Margherita"}],
    }
    cases = {
        "empty order": ({**base, "lines": []}, "lines"),
        "unknown pizza": ({**base, "lines": [{"pizza": "Sushi"}]}, "pizza"),
        "unknown size": ({**base, "lines": [{"pizza": "Margherita", "size": "huge"}]}, "size"),
        "too many": (
            {**base, "lines": [{"pizza": "Margherita", "quantity": 30}] * 2},
            "at most 50",
        ),
        "bad phone": ({**base, "customer": {**base["customer"], "phone": "12"}}, "phone"),  # type: ignore[dict-item]
        "bad email": (
            {**base, "customer": {"name": "A", "email": "nope", "address": "x"}},
            "email",
        ),
        "unknown field": ({**base, "coupon": "FREE"}, "coupon"),
        "no address": ({**base, "customer": {"name": "A", "phone": "+390612345678"}}, "address"),
    }
    for name, (body, mentioned) in cases.items():
        response = await orders_api.client.post("/orders", json=body)
        assert response.status_code == 422, (name, response.text)
        assert mentioned in response.text, (name, response.text)
