"""The kitchen in-process on a topic of its own (real database and broker), with tokens; and
the order events the tests feed it.

Each test gets a fresh topic standing in for ``pizzeria.orders`` (``KITCHEN_ORDERS_TOPIC``), a
fresh consumer group and a freshly migrated database, so tests never see each other's events.
The fixtures are in tests/integration/kitchen/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from contracts.catalogue import OrderCancelled, OrderConfirmed, OrderLine, OrderPlaced
from eventing.cloudevents_kafka import Envelope, encode
from eventing.database import asyncpg_dsn
from eventing.events import EventData
from kitchen.bootstrap import KitchenService
from kitchen.entrypoints.api import create_app
from kitchen.settings import KitchenSettings
from service_kit.auth import Role
from tests.support.eventing import create_topic
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.system import migrated_database
from tests.support.tokens import staff


def line(pizza: str = "Margherita", quantity: int = 1, size: str = "medium") -> OrderLine:
    return OrderLine(pizza=pizza, size=size, quantity=quantity, unit_price=Decimal("12.99"))


def confirmed(
    order_id: str,
    *lines: OrderLine,
    at: datetime | None = None,
    fulfilment: str = "delivery",
) -> OrderConfirmed:
    return OrderConfirmed(
        order_id=order_id,
        confirmed_at=at or datetime.now(UTC),
        confirmed_by="customer",
        customer_id="cust-1",
        lines=lines or (line(),),
        fulfilment=fulfilment,
    )


def cancelled(
    order_id: str,
    *,
    at: datetime | None = None,
    reason: str = "changed my mind",
    previous_status: str = "confirmed",
) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        cancelled_at=at or datetime.now(UTC),
        reason=reason,
        previous_status=previous_status,
    )


def placed(order_id: str) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        customer_id="cust-1",
        lines=(line(),),
        total=Decimal("12.99"),
        placed_at=datetime.now(UTC),
    )


def new_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


@dataclass
class OrdersTopic:
    """A fresh topic standing in for pizzeria.orders; ``publish`` writes CloudEvents to it."""

    infra: Infra
    name: str

    async def publish(self, *events: EventData | tuple[EventData, str]) -> list[str]:
        """Publish ``events`` (each optionally with a fixed event id) in order; returns the ids."""
        producer = AIOKafkaProducer(**self.infra.kafka_options(), acks="all")
        await producer.start()
        ids = []
        try:
            for item in events:
                data, event_id = item if isinstance(item, tuple) else (item, str(uuid.uuid4()))
                order_id = str(getattr(data, "order_id"))  # noqa: B009 - every order event has one
                record = encode(
                    Envelope(
                        id=event_id,
                        type=data.event_type,
                        source="/mariospizzeria/orders",
                        subject=order_id,
                        time=datetime.now(UTC),
                        partition_key=order_id,
                        data=data.model_dump(mode="json"),
                    )
                )
                await producer.send_and_wait(
                    self.name, value=record.value, key=record.key, headers=record.headers
                )
                ids.append(event_id)
        finally:
            await producer.stop()
        return ids


@dataclass
class KitchenHarness:
    """A kitchen app under test, its HTTP client, its database and the topic it consumes."""

    client: httpx.AsyncClient
    app: FastAPI
    database_url: str
    topic: OrdersTopic
    settings: KitchenSettings
    applied: list[str] = field(default_factory=list)

    @property
    def service(self) -> KitchenService:
        service: KitchenService = self.app.state.service
        return service

    @staticmethod
    def token(*roles: Role, subject: str = "chef-mario") -> dict[str, str]:
        return staff(*roles, subject=subject)

    @property
    def chef(self) -> dict[str, str]:
        return self.token(Role.CHEF)

    async def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        connection = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            return [dict(row) for row in await connection.fetch(query, *args)]
        finally:
            await connection.close()

    async def inbox_count(self) -> int:
        [row] = await self.rows("SELECT count(*) AS n FROM inbox")
        return int(row["n"])

    async def outbox(self, event_type: str | None = None) -> list[dict[str, Any]]:
        rows = await self.rows(
            "SELECT event_id::text, event_type, topic, partition_key, source, payload, "
            "xmin::text AS xmin FROM outbox ORDER BY id"
        )
        short = None if event_type is None else f"com.mariospizzeria.kitchen.{event_type}.v1"
        return [row for row in rows if short is None or row["event_type"] == short]

    async def ticket(self, order_id: str) -> dict[str, Any] | None:
        response = await self.client.get(f"/tickets/{order_id}", headers=self.chef)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    async def publish_and_wait(self, *events: EventData | tuple[EventData, str]) -> list[str]:
        """Publish; wait until the kitchen applied every subscribed one (by its inbox rows).

        A duplicate adds no inbox row: to know it was consumed too, publish something for the
        same order after it (one order's events are consumed in order).
        """
        before = await self.inbox_count()
        ids = await self.topic.publish(*events)
        subscribed = (OrderConfirmed.event_type, OrderCancelled.event_type)
        expected = before + len(
            {
                event_id
                for item, event_id in zip(events, ids, strict=True)
                if (item[0] if isinstance(item, tuple) else item).event_type in subscribed
            }
        )
        await eventually(
            self.inbox_count,
            until=lambda n: n >= expected,
            interval=0.05,
            what=f"{expected} inbox rows",
        )
        return ids


async def new_orders_topic(infra: Infra) -> OrdersTopic:
    """A fresh topic standing in for pizzeria.orders."""
    name = await create_topic(infra, f"t{uuid.uuid4().hex[:8]}.pizzeria.orders", partitions=6)
    return OrdersTopic(infra, name)


def kitchen_settings(
    infra: Infra, database_url: str, topic: OrdersTopic, **overrides: Any
) -> KitchenSettings:
    return KitchenSettings(
        database_url=database_url,
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        orders_topic=topic.name,
        consumer_group=f"kitchen-test-{uuid.uuid4().hex[:8]}",
        **overrides,
    )


@asynccontextmanager
async def running_kitchen(
    infra: Infra,
    topic: OrdersTopic,
    *,
    database_url: str | None = None,
    **overrides: Any,
) -> AsyncIterator[KitchenHarness]:
    url = database_url or await migrated_database(infra, "kitchen")
    settings = kitchen_settings(infra, url, topic, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kitchen") as client:
            yield KitchenHarness(client, app, url, topic, settings)


def statuses(tickets: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(t["order_id"], t["status"]) for t in tickets]
