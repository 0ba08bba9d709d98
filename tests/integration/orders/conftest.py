"""The orders API in-process (real database and broker), with tokens for every role; for
sign-in, with a notifications service (a real process) that sends codes to in-test sinks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orders.entrypoints.api import create_app
from orders.settings import OrdersSettings
from service_kit.auth import AuthSettings, Role, mint_token
from tests.support.customers import ask_for_code, bearer, sign_in
from tests.support.infra import Infra
from tests.support.notifications import (
    Notifications,
    Sinks,
    notifications_under_test,
    start_sinks,
)
from tests.support.system import SIGN_IN_TOKEN, migrated_database

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
    client: httpx.AsyncClient
    database_url: str
    # Where the codes the service sends arrive (None: sign-in is not set up).
    sinks: Sinks | None = field(default=None)

    def token(self, *roles: Role, subject: str = "staff-1") -> dict[str, str]:
        """An Authorization header for a principal with ``roles``."""
        jwt = mint_token(AuthSettings(), subject=subject, roles=list(roles))
        return {"Authorization": f"Bearer {jwt}"}

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


@pytest.fixture
async def orders_api(infra: Infra) -> AsyncIterator[OrdersApi]:
    async with orders_app(infra) as api:
        yield api


@pytest.fixture(scope="module")
async def code_sinks() -> AsyncIterator[Sinks]:
    sinks = await start_sinks()
    try:
        yield sinks
    finally:
        await sinks.stop()


@pytest.fixture(scope="module")
async def code_notifications(infra: Infra, code_sinks: Sinks) -> AsyncIterator[Notifications]:
    """A notifications service that sends the codes of this module's orders APIs."""
    service = await notifications_under_test(
        infra, code_sinks, {"NOTIFICATIONS_SIGN_IN_TOKEN": SIGN_IN_TOKEN}
    )
    await service.start()
    try:
        yield service
    finally:
        assert service.process is not None
        service.process.terminate()


SignedInApi = Callable[..., AbstractAsyncContextManager[OrdersApi]]


@pytest.fixture
def signing_in(infra: Infra, code_sinks: Sinks, code_notifications: Notifications) -> SignedInApi:
    """``async with signing_in(**settings) as api``: an orders API whose codes arrive."""

    def make(**settings: Any) -> AbstractAsyncContextManager[OrdersApi]:
        return orders_app(
            infra,
            sinks=code_sinks,
            notifications_url=code_notifications.base_url,
            notifications_token=SIGN_IN_TOKEN,
            **settings,
        )

    return make


@pytest.fixture
async def customers_api(signing_in: SignedInApi) -> AsyncIterator[OrdersApi]:
    async with signing_in() as api:
        yield api
