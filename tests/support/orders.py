"""The orders API in-process (real database and broker), with tokens for every role; for
sign-in, with sinks that receive the codes a notifications service sends. The fixtures are in
tests/integration/orders/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from eventing.events import EventData
from orders.entrypoints.api import create_app
from orders.settings import OrdersSettings
from service_kit.auth import Role
from tests.support.customers import ask_for_code, bearer, sign_in
from tests.support.eventing import publish_event
from tests.support.infra import Infra
from tests.support.notifications import Sinks
from tests.support.polling import eventually
from tests.support.system import migrated_database
from tests.support.tokens import staff

# Many placements with one phone from one address; the limits have tests of their own.
UNLIMITED: dict[str, Any] = {
    "placements_per_client": "off",
    "placements_per_contact": "off",
    "sign_in_codes_per_client": "off",
    "sign_in_codes_per_contact": "off",
    "sign_in_attempts_per_client": "off",
}


@dataclass
class OrdersApi:
    """An orders app under test: its HTTP client and its database."""

    client: httpx.AsyncClient
    database_url: str
    # Where the codes the service sends arrive (None: sign-in is not set up).
    sinks: Sinks | None = field(default=None)
    # The group of its kitchen-event consumer, when the test chose one.
    consumer_group: str | None = None

    def token(self, *roles: Role, subject: str = "staff-1") -> dict[str, str]:
        """An Authorization header for a principal with ``roles``."""
        return staff(*roles, subject=subject)

    async def place(self, headers: dict[str, str] | None = None, **overrides: object) -> Any:
        body: dict[str, object] = {
            "customer": {
                "name": "Giulia Rossi",
                "phone": "+39 06 1234 5678",
                "address": "Via Roma 1",
            },
            "lines": [{"pizza": "Margherita", "size": "medium", "quantity": 1}],
            "fulfilment": "delivery",
        }
        body.update(overrides)
        response = await self.client.post("/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def customer_of(self, order_id: object) -> str:
        """The order's customer (or guest) id, as staff see it."""
        order = await self.client.get(f"/orders/{order_id}", headers=self.token(Role.MANAGER))
        assert order.status_code == 200, order.text
        customer_id: str = order.json()["customer_id"]
        return customer_id

    async def code(self, contact: dict[str, str]) -> str:
        """Ask for a sign-in code for ``contact``; the code as it arrived."""
        assert self.sinks is not None
        return await ask_for_code(self.client, self.sinks, contact)

    async def sign_in(self, contact: dict[str, str], **extra: Any) -> tuple[str, dict[str, str]]:
        """Sign in with a code sent to ``contact``: the customer id and its Authorization."""
        assert self.sinks is not None
        answer = await sign_in(self.client, self.sinks, contact, **extra)
        return str(answer["customer_id"]), bearer(answer)


@asynccontextmanager
async def orders_app(
    infra: Infra,
    *,
    sinks: Sinks | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    **settings: Any,
) -> AsyncIterator[OrdersApi]:
    url = await migrated_database(infra, "orders")
    app = create_app(
        OrdersSettings(
            database_url=url,
            kafka_bootstrap_servers=infra.kafka_bootstrap,
            **{**UNLIMITED, **settings},
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
            yield OrdersApi(http, url, sinks)


@asynccontextmanager
async def consuming_orders_app(infra: Infra) -> AsyncIterator[OrdersApi]:
    """The orders API with its kitchen-event consumer in a group of its own; yields once the
    consumer has its partitions (so that what a test publishes next is consumed)."""
    group = f"orders-test-{uuid.uuid4().hex[:8]}"
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

        async def readiness() -> int:
            return (await client.get("/readyz")).status_code

        await eventually(
            readiness,
            until=lambda status: status == 200,
            interval=0.2,
            what="the consumer assigned its partitions",
        )
        yield OrdersApi(client, url, consumer_group=group)


async def kitchen_says(infra: Infra, event: EventData, order_id: str) -> None:
    """What the kitchen service publishes when a cook acts."""
    await publish_event(infra, event, key=order_id, source="/mariospizzeria/kitchen")


async def order_status_becomes(
    client: httpx.AsyncClient,
    order_id: str,
    headers: dict[str, str],
    status: str,
    *,
    timeout: float = 15,
) -> None:
    """Until ``GET /orders/{order_id}`` (of the orders API at ``client``) says ``status``."""

    async def current() -> str:
        response = await client.get(f"/orders/{order_id}", headers=headers)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    await eventually(
        current,
        until=lambda now: now == status,
        timeout=timeout,
        what=f"order {order_id} {status}",
    )


# ``async with signing_in(**settings) as api`` (the ``signing_in`` fixture).
SignedInApi = Callable[..., AbstractAsyncContextManager[OrdersApi]]
