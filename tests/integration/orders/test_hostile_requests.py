"""Requests made to hurt the orders API get a 4xx with a reason, never a 500, and the limits
hold: the body size, the placement rate per client address and per phone or email."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from orders.entrypoints.api import create_app
from orders.settings import OrdersSettings
from service_kit.auth import Role
from tests.support.infra import Infra
from tests.support.orders import OrdersApi
from tests.support.system import migrated_database


def order(customer: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "customer": customer or {"name": "Giulia Rossi", "phone": "+39 06 1234 5678"},
        "lines": [{"pizza": "Margherita"}],
        "fulfilment": "pickup",
        **fields,
    }


def with_name(name: str) -> dict[str, Any]:
    return order({"name": name, "phone": "+39 06 1234 5678"})


# (what, body as sent, the field the 422 names)
HOSTILE_BODIES: list[tuple[str, bytes, list[str | int]]] = [
    ("NUL in a name", json.dumps(with_name("a\u0000b")).encode(), ["body", "customer", "name"]),
    (
        "lone surrogate",
        b'{"customer": {"name": "\\ud800", "phone": "+3906123456"}, '
        b'"lines": [{"pizza": "Margherita"}], "fulfilment": "pickup"}',
        ["body", "customer", "name"],
    ),
    ("escape in a name", json.dumps(with_name("a\u001bb")).encode(), ["body", "customer", "name"]),
    (
        "huge quantity",
        json.dumps(order(lines=[{"pizza": "Margherita", "quantity": 10**30}])).encode(),
        ["body", "lines", 0, "quantity"],
    ),
    (
        "float quantity",
        json.dumps(order(lines=[{"pizza": "Margherita", "quantity": 1e308}])).encode(),
        ["body", "lines", 0, "quantity"],
    ),
    (
        "hundreds of toppings",
        json.dumps(order(lines=[{"pizza": "Margherita", "toppings": ["olives"] * 300}])).encode(),
        ["body", "lines", 0, "toppings"],
    ),
    (
        "a long topping",
        json.dumps(order(lines=[{"pizza": "Margherita", "toppings": ["x" * 5000]}])).encode(),
        ["body", "lines", 0, "toppings", 0],
    ),
    (
        "a topping not on the menu",
        json.dumps(
            order(lines=[{"pizza": "Margherita", "toppings": ["<script>alert(1)</script>"]}])
        ).encode(),
        ["body", "lines", 0, "toppings", 0],
    ),
    (
        "an unknown pizza",
        json.dumps(order(lines=[{"pizza": "Calzone"}])).encode(),
        ["body", "lines", 0, "pizza"],
    ),
    (
        "too many lines",
        json.dumps(order(lines=[{"pizza": "Margherita"}] * 51)).encode(),
        ["body", "lines"],
    ),
    (
        "opt-in as a number",
        json.dumps(order({"name": "G", "phone": "+3906123456", "sms_opt_in": 0})).encode(),
        ["body", "customer", "sms_opt_in"],
    ),
    (
        "no way to reach the customer",
        json.dumps(order({"name": "G"})).encode(),
        ["body", "customer"],
    ),
    (
        "a phone that is not one",
        json.dumps(order({"name": "G", "phone": "call me"})).encode(),
        ["body", "customer", "phone"],
    ),
    ("not JSON", b"{nope", ["body", 1]),
    ("JSON nested 30,000 deep", b"[" * 30000 + b"]" * 30000, []),
]


@pytest.mark.parametrize(("what", "body", "location"), HOSTILE_BODIES, ids=lambda v: str(v)[:30])
async def test_a_hostile_order_is_a_4xx_with_a_reason(
    orders_api: OrdersApi, what: str, body: bytes, location: list[str | int]
) -> None:
    response = await orders_api.client.post(
        "/orders", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    detail = response.json()["detail"]
    assert detail, what
    if location:
        assert response.status_code == 422, (what, response.text)
        assert location in [problem["loc"][: len(location)] for problem in detail], detail


async def test_undecodable_and_oversized_bodies(orders_api: OrdersApi) -> None:
    client = orders_api.client
    not_utf8 = await client.post(
        "/orders", content=b'{"customer": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert not_utf8.status_code == 400, not_utf8.text
    padding = "x" * (70 * 1024)
    too_large = await client.post("/orders", json=order(note=padding))
    assert too_large.status_code == 413, too_large.text
    assert "at most 65536 bytes" in too_large.json()["detail"]
    deep_event = b"[" * 20000 + b"]" * 20000
    for content_type in ("application/cloudevents+json", "application/json"):
        inbound = await client.post(
            "/cloudevents",
            content=deep_event,
            headers={
                "Content-Type": content_type,
                "ce-id": "x",
                "ce-source": "/x",
                "ce-type": "com.mariospizzeria.payment.succeeded.v1",
                "ce-specversion": "1.0",
            },
        )
        assert inbound.status_code in (400, 401), inbound.text  # never a 500


@pytest.mark.parametrize(
    "path",
    [
        "/orders/a%00b",
        "/orders/%F0%9F%8D%95",
        "/orders/" + "9" * 300,
        "/orders/a%0Ab/confirm",
        "/customers/%ff%fe",
        "/menu/pizzas/a%00",
    ],
)
async def test_ids_that_cannot_be_ours_are_refused_before_the_database(
    orders_api: OrdersApi, path: str
) -> None:
    manager = orders_api.token(Role.MANAGER, Role.DRIVER)
    for method in ("GET", "POST", "PUT", "DELETE"):
        response = await orders_api.client.request(
            method, path, headers=manager, json={"base_price": "1.00", "toppings": []}
        )
        assert response.status_code in (400, 404, 405, 422), (method, path, response.text)


async def test_query_parameters_are_checked_too(orders_api: OrdersApi) -> None:
    staff = orders_api.token(Role.MANAGER)
    for query in (
        "placed_from=0.5",
        "placed_from=2026-01-01T00:00:00",  # no offset
        "limit=99999999999999999999999",
        "status=eaten",
        "cursor=%00",
        "cursor=" + "A" * 501,
        "cursor=bm90IGEgY3Vyc29y",  # base64 of "not a cursor"
    ):
        response = await orders_api.client.get(f"/orders?{query}", headers=staff)
        assert response.status_code in (400, 422), (query, response.text)
        assert response.json()["detail"]


@pytest.fixture
async def limited_orders(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    url = await migrated_database(infra, "orders")
    settings = OrdersSettings(
        database_url=url,
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        placements_per_client="5/minute",
        placements_per_contact="2/hour",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            yield client


def someone() -> dict[str, str]:
    return {"name": "Someone", "email": f"{uuid.uuid4().hex}@example.com"}


async def test_placements_are_limited_per_phone_or_email(
    limited_orders: httpx.AsyncClient,
) -> None:
    victim = {"name": "Victim", "phone": "+39 06 5555 0101"}
    answers = [(await limited_orders.post("/orders", json=order(victim))) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) > 0
    assert "phone number or email" in refused.json()["detail"]
    # Written another way, the number is the same number.
    same = {"name": "Victim", "phone": "+39-06-5555-0101"}
    assert (await limited_orders.post("/orders", json=order(same))).status_code == 429
    # Somebody else from the same address is not affected by the victim's limit.
    assert (await limited_orders.post("/orders", json=order(someone()))).status_code == 201


async def test_only_orders_placed_count_against_a_phone_or_email(
    limited_orders: httpx.AsyncClient,
) -> None:
    victim = {"name": "Victim", "email": f"{uuid.uuid4().hex}@example.com"}
    # Refused placements in the victim's name use up nothing of the victim's limit (2/hour).
    not_on_the_menu = order(victim, lines=[{"pizza": "Teleported"}])
    refused = await limited_orders.post("/orders", json=not_on_the_menu)
    assert refused.status_code == 422, refused.text
    retry = {"Idempotency-Key": str(uuid.uuid4())}
    placed = await limited_orders.post("/orders", json=order(victim), headers=retry)
    assert placed.status_code == 201, placed.text
    # Nor does a retry that returns the order its Idempotency-Key already placed.
    replayed = await limited_orders.post("/orders", json=order(victim), headers=retry)
    assert replayed.status_code == 200, replayed.text
    second = await limited_orders.post("/orders", json=order(victim))
    assert second.status_code == 201, second.text
    assert (await limited_orders.post("/orders", json=order(victim))).status_code == 429


async def test_placements_are_limited_per_client_address(
    limited_orders: httpx.AsyncClient,
) -> None:
    statuses = [
        (await limited_orders.post("/orders", json=order(someone()))).status_code for _ in range(6)
    ]
    assert statuses == [201] * 5 + [429]
    metrics = (await limited_orders.get("/metrics")).text
    assert 'orders_placements_rate_limited_total{limit="client"}' in metrics
