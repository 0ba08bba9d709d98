"""The orders API in-process (real database and broker), with tokens for every role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from eventing.auth import AuthSettings, Role, mint_token
from orders.entrypoints.api import create_app
from orders.settings import OrdersSettings
from tests.support.infra import Infra
from tests.support.system import migrated_database


@dataclass
class OrdersApi:
    client: httpx.AsyncClient
    database_url: str

    def token(self, *roles: Role, subject: str = "staff-1") -> dict[str, str]:
        """An Authorization header for a principal with ``roles``."""
        jwt = mint_token(AuthSettings(), subject=subject, roles=list(roles))
        return {"Authorization": f"Bearer {jwt}"}

    async def place(self, **overrides: object) -> dict[str, object]:
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
        response = await self.client.post("/orders", json=body)
        assert response.status_code == 201, response.text
        placed: dict[str, object] = response.json()
        return placed


@pytest.fixture
async def orders_api(infra: Infra) -> AsyncIterator[OrdersApi]:
    url = await migrated_database(infra, "orders")
    settings = OrdersSettings(
        database_url=url,
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        # Many placements with one phone from one address; the limits have tests of their own.
        placements_per_client="off",
        placements_per_contact="off",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            yield OrdersApi(client, url)
