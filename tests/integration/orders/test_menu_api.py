"""Menu management: the public menu, managers' changes as menu events, and placed orders keeping
their prices."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from eventing.database import asyncpg_dsn
from service_kit.auth import Role
from tests.support.orders import OrdersApi

ADDED = "com.mariospizzeria.menu.pizza_added.v1"
CHANGED = "com.mariospizzeria.menu.pizza_changed.v1"
RETIRED = "com.mariospizzeria.menu.pizza_retired.v1"


async def menu_events(
    api: OrdersApi, name: str | None = None, aggregate: str = "pizza"
) -> list[dict[str, Any]]:
    """The menu events in the outbox, oldest first (optionally of one pizza or topping)."""
    conn = await asyncpg.connect(asyncpg_dsn(api.database_url))
    try:
        rows = await conn.fetch(
            "SELECT event_type, topic, partition_key, aggregate_type, aggregate_version, payload"
            " FROM outbox WHERE aggregate_type = $2 AND ($1::text IS NULL OR"
            " aggregate_id = $1) ORDER BY event_id",
            name,
            aggregate,
        )
    finally:
        await conn.close()
    return [
        {
            **dict(row),
            "payload": json.loads(row["payload"])
            if isinstance(row["payload"], str)
            else row["payload"],
        }
        for row in rows
    ]


async def read_menu(api: OrdersApi) -> dict[str, dict[str, Any]]:
    response = await api.client.get("/menu")
    assert response.status_code == 200, response.text
    return {pizza["name"]: pizza for pizza in response.json()["pizzas"]}


async def test_menu_is_public_with_each_size_priced_by_the_pricing_rule(
    orders_api: OrdersApi,
) -> None:
    response = await orders_api.client.get("/menu")
    assert response.status_code == 200
    body = response.json()
    assert body["currency"] == "EUR"
    assert body["topping_price"] == "1.50"
    names = [pizza["name"] for pizza in body["pizzas"]]
    assert names == sorted(names)
    assert set(names) == {
        "Margherita",
        "Pepperoni",
        "Vegetarian",
        "Hawaiian",
        "BBQ Chicken",
        "Meat Lovers",
    }
    margherita = next(p for p in body["pizzas"] if p["name"] == "Margherita")
    assert margherita["base_price"] == "12.99"
    assert margherita["toppings"] == ["tomato", "mozzarella", "basil"]
    # 12.99 × 0.80 = 10.392 → 10.39; × 1.25 = 16.2375 → 16.24 (half up)
    assert margherita["prices"] == {"small": "10.39", "medium": "12.99", "large": "16.24"}
    assert margherita["version"] == 1


async def test_menu_changes_need_a_manager(orders_api: OrdersApi) -> None:
    client = orders_api.client
    body = {"name": "Marinara", "base_price": "9.50", "toppings": ["tomato", "garlic"]}
    change = {"base_price": "1.00", "toppings": []}
    for headers, expected in (({}, 401), (orders_api.token(Role.CHEF), 403)):
        assert (await client.post("/menu/pizzas", json=body, headers=headers)).status_code == (
            expected
        )
        put = await client.put("/menu/pizzas/Margherita", json=change, headers=headers)
        assert put.status_code == expected
        delete = await client.delete("/menu/pizzas/Margherita", headers=headers)
        assert delete.status_code == expected
    unauthorized = await client.post("/menu/pizzas", json=body)
    assert unauthorized.headers["WWW-Authenticate"] == "Bearer"
    forbidden = await client.delete("/menu/pizzas/Margherita", headers=orders_api.token(Role.CHEF))
    assert "manager" in forbidden.json()["detail"]
    menu = await read_menu(orders_api)
    assert "Marinara" not in menu
    assert menu["Margherita"]["base_price"] == "12.99"
    assert menu["Margherita"]["version"] == 1
    assert await menu_events(orders_api) == []


async def test_add_change_retire_each_publish_a_versioned_menu_event(
    orders_api: OrdersApi,
) -> None:
    client, manager = orders_api.client, orders_api.token(Role.MANAGER)

    added = await client.post(
        "/menu/pizzas",
        json={
            "name": "Quattro Formaggi",
            "base_price": "15.5",
            "toppings": ["mozzarella", "gorgonzola"],
        },
        headers=manager,
    )
    assert added.status_code == 201, added.text
    assert added.json() == {
        "name": "Quattro Formaggi",
        "base_price": "15.50",
        "toppings": ["mozzarella", "gorgonzola"],
        "prices": {"small": "12.40", "medium": "15.50", "large": "19.38"},
        "version": 1,
    }
    assert (await read_menu(orders_api))["Quattro Formaggi"]["base_price"] == "15.50"

    changed = await client.put(
        "/menu/pizzas/Quattro Formaggi",
        json={"base_price": "16.00", "toppings": ["mozzarella", "gorgonzola", "parmesan"]},
        headers=manager,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["prices"]["large"] == "20.00"
    menu = await read_menu(orders_api)
    assert menu["Quattro Formaggi"]["toppings"] == ["mozzarella", "gorgonzola", "parmesan"]

    retired = await client.delete("/menu/pizzas/Quattro Formaggi", headers=manager)
    assert retired.status_code == 204
    assert retired.content == b""
    assert "Quattro Formaggi" not in await read_menu(orders_api)

    events = await menu_events(orders_api, "Quattro Formaggi")
    assert [(e["event_type"], e["aggregate_version"]) for e in events] == [
        (ADDED, 1),
        (CHANGED, 2),
        (RETIRED, 3),
    ]
    assert {(e["topic"], e["partition_key"]) for e in events} == {
        ("pizzeria.menu", "Quattro Formaggi")
    }
    added_payload, changed_payload, retired_payload = (e["payload"] for e in events)
    assert added_payload["name"] == "Quattro Formaggi"
    assert added_payload["base_price"] == "15.50"
    assert added_payload["toppings"] == ["mozzarella", "gorgonzola"]
    assert changed_payload["base_price"] == "16.00"
    assert changed_payload["toppings"] == ["mozzarella", "gorgonzola", "parmesan"]
    assert retired_payload["name"] == "Quattro Formaggi"
    assert {"at"} <= set(retired_payload)
    # only this pizza's events were written
    assert len(await menu_events(orders_api)) == 3


async def test_refused_menu_changes_say_why_and_publish_nothing(orders_api: OrdersApi) -> None:
    client, manager = orders_api.client, orders_api.token(Role.MANAGER)
    update = {"base_price": "10.00", "toppings": ["tomato"]}

    existing = await client.post(
        "/menu/pizzas",
        json={"name": "Margherita", "base_price": "9.99", "toppings": []},
        headers=manager,
    )
    assert existing.status_code == 409
    assert "already on the menu" in existing.json()["detail"]

    unknown = await client.put("/menu/pizzas/Calzone", json=update, headers=manager)
    assert unknown.status_code == 404
    assert "Calzone" in unknown.json()["detail"]
    assert (await client.delete("/menu/pizzas/Calzone", headers=manager)).status_code == 404

    assert (await client.delete("/menu/pizzas/Hawaiian", headers=manager)).status_code == 204
    again = await client.delete("/menu/pizzas/Hawaiian", headers=manager)
    assert again.status_code == 409
    assert "retired" in again.json()["detail"]
    change_retired = await client.put("/menu/pizzas/Hawaiian", json=update, headers=manager)
    assert change_retired.status_code == 409
    assert "retired" in change_retired.json()["detail"]

    assert [e["event_type"] for e in await menu_events(orders_api)] == [RETIRED]

    # a retired name can come back: a new version, announced as added
    back = await client.post(
        "/menu/pizzas",
        json={"name": "Hawaiian", "base_price": "13.49", "toppings": ["ham", "pineapple"]},
        headers=manager,
    )
    assert back.status_code == 201, back.text
    assert back.json()["version"] == 3
    assert (await read_menu(orders_api))["Hawaiian"]["base_price"] == "13.49"
    assert [(e["event_type"], e["aggregate_version"]) for e in await menu_events(orders_api)] == [
        (RETIRED, 2),
        (ADDED, 3),
    ]


async def test_invalid_menu_bodies_are_422_per_field(orders_api: OrdersApi) -> None:
    client, manager = orders_api.client, orders_api.token(Role.MANAGER)
    cases: list[tuple[dict[str, Any], list[str | int]]] = [
        ({"name": "Marinara", "base_price": "9.999", "toppings": []}, ["body", "base_price"]),
        ({"name": "Marinara", "base_price": "0", "toppings": []}, ["body", "base_price"]),
        ({"name": "Marinara", "base_price": "-1.00", "toppings": []}, ["body", "base_price"]),
        ({"name": "Marinara", "base_price": "NaN", "toppings": []}, ["body", "base_price"]),
        ({"name": "Marinara", "base_price": "abc", "toppings": []}, ["body", "base_price"]),
        # Money is a decimal string: a JSON number (a binary float) is refused.
        ({"name": "Marinara", "base_price": 9.5, "toppings": []}, ["body", "base_price"]),
        ({"name": " Marinara", "base_price": "9.50", "toppings": []}, ["body", "name"]),
        ({"name": "Mari\u0000nara", "base_price": "9.50", "toppings": []}, ["body", "name"]),
        ({"name": "Marinara", "base_price": "9.50", "toppings": [" "]}, ["body", "toppings"]),
        ({"name": "", "base_price": "9.50", "toppings": []}, ["body", "name"]),
        ({"name": "A/B", "base_price": "9.50", "toppings": []}, ["body", "name"]),
        ({"name": "Marinara", "base_price": "9.50", "toppings": ["a", "a"]}, ["body", "toppings"]),
        ({"name": "Marinara", "base_price": "9.50"}, ["body", "toppings"]),
        (
            {"name": "Marinara", "base_price": "9.50", "toppings": [], "colour": "red"},
            ["body", "colour"],
        ),
    ]
    for body, loc in cases:
        response = await client.post("/menu/pizzas", json=body, headers=manager)
        assert response.status_code == 422, (body, response.text)
        assert loc in [error["loc"][: len(loc)] for error in response.json()["detail"]], (
            body,
            response.json(),
        )
    put = await client.put(
        "/menu/pizzas/Margherita", json={"base_price": "12.345", "toppings": []}, headers=manager
    )
    assert put.status_code == 422
    assert put.json()["detail"][0]["loc"] == ["body", "base_price"]
    assert "Marinara" not in await read_menu(orders_api)
    assert await menu_events(orders_api) == []


async def test_a_price_change_does_not_change_an_order_already_placed(
    orders_api: OrdersApi,
) -> None:
    client, manager = orders_api.client, orders_api.token(Role.MANAGER)
    placed = await orders_api.place(
        lines=[{"pizza": "Margherita", "size": "large", "quantity": 2, "toppings": ["olives"]}]
    )
    # (16.24 + 1.50) × 2
    assert placed["total"] == "35.48"

    changed = await client.put(
        "/menu/pizzas/Margherita",
        json={"base_price": "20.00", "toppings": ["tomato", "mozzarella", "basil"]},
        headers=manager,
    )
    assert changed.status_code == 200
    assert changed.json()["prices"]["large"] == "25.00"

    read = await client.get(f"/orders/{placed['id']}", headers=manager)
    assert read.status_code == 200
    assert read.json()["total"] == "35.48"
    assert read.json()["lines"][0]["unit_price"] == "17.74"
    assert read.json()["version"] == placed["version"]

    newer = await orders_api.place(
        lines=[{"pizza": "Margherita", "size": "large", "quantity": 2, "toppings": ["olives"]}]
    )
    assert newer["total"] == "53.00"  # (25.00 + 1.50) × 2

    assert (await client.delete("/menu/pizzas/Margherita", headers=manager)).status_code == 204
    still = await client.get(f"/orders/{placed['id']}", headers=manager)
    assert still.json()["total"] == "35.48"
    assert still.json()["status"] == "pending"


async def test_a_retired_pizza_cannot_be_ordered(orders_api: OrdersApi) -> None:
    manager = orders_api.token(Role.MANAGER)
    assert (
        await orders_api.client.delete("/menu/pizzas/BBQ Chicken", headers=manager)
    ).status_code == 204
    response = await orders_api.client.post(
        "/orders",
        json={
            "customer": {"name": "Luca", "email": "luca@example.com"},
            "lines": [
                {"pizza": "Margherita", "size": "small"},
                {"pizza": "BBQ Chicken", "size": "medium"},
            ],
            "fulfilment": "pickup",
        },
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "lines", 1, "pizza"]
    assert "not on the menu" in error["msg"]


async def test_concurrent_changes_of_one_pizza_never_lose_an_update(
    orders_api: OrdersApi,
) -> None:
    manager = orders_api.token(Role.MANAGER)
    responses = await asyncio.gather(
        *(
            orders_api.client.put(
                "/menu/pizzas/Pepperoni",
                json={"base_price": f"{15 + i}.00", "toppings": ["tomato", "pepperoni"]},
                headers=manager,
            )
            for i in range(10)
        )
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 409}, [r.text for r in responses]
    winners = [r.json() for r in responses if r.status_code == 200]
    assert winners
    assert sorted(w["version"] for w in winners) == list(range(2, 2 + len(winners)))
    events = await menu_events(orders_api, "Pepperoni")
    assert [e["aggregate_version"] for e in events] == list(range(2, 2 + len(winners)))
    final = (await read_menu(orders_api))["Pepperoni"]
    assert final["version"] == 1 + len(winners)
    last = max(winners, key=lambda w: w["version"])
    assert final["base_price"] == last["base_price"] == events[-1]["payload"]["base_price"]
    for conflict in (r for r in responses if r.status_code == 409):
        assert "changed meanwhile" in conflict.json()["detail"]


TOPPING_ADDED = "com.mariospizzeria.menu.topping_added.v1"
TOPPING_RETIRED = "com.mariospizzeria.menu.topping_retired.v1"


async def extra_toppings(api: OrdersApi) -> list[str]:
    response = await api.client.get("/menu")
    assert response.status_code == 200, response.text
    toppings: list[str] = response.json()["extra_toppings"]
    return toppings


async def test_managers_change_the_extra_toppings_and_each_change_is_a_menu_event(
    orders_api: OrdersApi,
) -> None:
    client, manager = orders_api.client, orders_api.token(Role.MANAGER)
    offered = await extra_toppings(orders_api)
    assert "olives" in offered and offered == sorted(offered)

    added = await client.put("/menu/toppings/truffle", headers=manager)
    assert (added.status_code, added.json()) == (201, {"name": "truffle", "added": True})
    again = await client.put("/menu/toppings/truffle", headers=manager)
    assert (again.status_code, again.json()) == (200, {"name": "truffle", "added": False})
    assert "truffle" in await extra_toppings(orders_api)
    truffled = await orders_api.place(
        lines=[{"pizza": "Margherita", "toppings": ["truffle", "olives"]}]
    )
    assert truffled["total"] == "15.99"  # 12.99 + 2 x 1.50

    retired = await client.delete("/menu/toppings/truffle", headers=manager)
    assert retired.status_code == 204, retired.text
    assert "truffle" not in await extra_toppings(orders_api)
    refused = await client.post(
        "/orders",
        json={
            "customer": {"name": "Giulia Rossi", "phone": "+39 06 1234 5678"},
            "lines": [{"pizza": "Margherita", "toppings": ["olives", "truffle"]}],
            "fulfilment": "pickup",
        },
    )
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "lines", 0, "toppings", 1]
    assert problem["type"] == "not_on_the_menu"
    assert (await client.delete("/menu/toppings/truffle", headers=manager)).status_code == 409
    assert (await client.delete("/menu/toppings/caviar", headers=manager)).status_code == 404

    events = await menu_events(orders_api, "truffle", aggregate="topping")
    assert [(e["event_type"], e["aggregate_version"]) for e in events] == [
        (TOPPING_ADDED, 1),
        (TOPPING_RETIRED, 2),
    ]
    assert {e["topic"] for e in events} == {"pizzeria.menu"}
    assert events[0]["payload"]["name"] == "truffle"


async def test_only_managers_change_the_extra_toppings(orders_api: OrdersApi) -> None:
    client = orders_api.client
    for request in (client.put, client.delete):
        assert (await request("/menu/toppings/olives")).status_code == 401
        chef = await request("/menu/toppings/olives", headers=orders_api.token(Role.CHEF))
        assert chef.status_code == 403
    assert "olives" in await extra_toppings(orders_api)
    assert await menu_events(orders_api, aggregate="topping") == []
