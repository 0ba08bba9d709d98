"""The notifications service under test: its own topics and database, real SMTP and SMS sinks
in the test's event loop, and the service as a real process that tests can kill."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from contracts.catalogue import (
    CustomerContactUpdated,
    OrderLine,
    OrderPlaced,
    tracking_token_sha256,
)
from contracts.topics import CUSTOMER_CONTACTS, KITCHEN, ORDERS
from eventing.cloudevents_kafka import Envelope, encode
from eventing.database import asyncpg_dsn
from eventing.events import EventData
from notifications.adapters.sinks import SmsSink, SmtpSink
from notifications.entrypoints.api import create_app
from notifications.settings import NotificationsSettings
from tests.support.eventing import create_topic, unique_prefix
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, base_url, service_process

SMS_ACCOUNT = "AC-test"
SMS_TOKEN = "test-token"


@dataclass
class Sinks:
    smtp: SmtpSink
    sms: SmsSink

    def env(self) -> dict[str, str]:
        return {
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(self.smtp.port),
            "NOTIFICATIONS_SMS_ENDPOINT_URL": self.sms.url,
            "NOTIFICATIONS_SMS_ACCOUNT_SID": SMS_ACCOUNT,
            "NOTIFICATIONS_SMS_AUTH_TOKEN": SMS_TOKEN,
        }

    async def stop(self) -> None:
        await self.sms.stop()
        await self.smtp.stop()

    def close(self) -> None:
        """Stop listening without awaiting (for synchronous tear-downs)."""
        self.sms.close()
        self.smtp.close()


async def start_sinks() -> Sinks:
    sinks = Sinks(SmtpSink(), SmsSink(account_sid=SMS_ACCOUNT, auth_token=SMS_TOKEN))
    await sinks.smtp.start()
    await sinks.sms.start()
    return sinks


FAST = {  # quick polls and retries, so tests take seconds
    "NOTIFICATIONS_DISPATCHER_POLL_SECONDS": "0.1",
    "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.2",
    "NOTIFICATIONS_RETRY_CAP_SECONDS": "1.0",
    "NOTIFICATIONS_MAX_ATTEMPTS": "100",
    # What a killed instance leased comes due again after 20 s, not a minute.
    "NOTIFICATIONS_SMTP_TIMEOUT_SECONDS": "5",
    "NOTIFICATIONS_SMS_TIMEOUT_SECONDS": "5",
    "NOTIFICATIONS_DISPATCH_LEASE_SECONDS": "20",
}


@dataclass
class Notifications:
    """One notifications service (topics with a unique prefix, its own database)."""

    infra: Infra
    sinks: Sinks
    url: str
    topics: dict[str, str]
    group: str
    extra_env: dict[str, str] = field(default_factory=dict)
    process: ServiceProcess | None = None

    @property
    def dsn(self) -> str:
        return asyncpg_dsn(self.url)

    def service_env(self) -> dict[str, str]:
        """The service's settings (besides its database, broker and port), as variables."""
        return {
            **self.sinks.env(),
            **FAST,
            "NOTIFICATIONS_ORDERS_TOPIC": self.topics[ORDERS.name],
            "NOTIFICATIONS_KITCHEN_TOPIC": self.topics[KITCHEN.name],
            "NOTIFICATIONS_CONTACTS_TOPIC": self.topics[CUSTOMER_CONTACTS.name],
            "NOTIFICATIONS_CONSUMER_GROUP": self.group,
            **self.extra_env,
        }

    def new_process(self) -> ServiceProcess:
        process = service_process(self.infra, "notifications", self.url, self.service_env())
        return replace(process, name=f"notifications-{self.group.rstrip('.')}")

    @asynccontextmanager
    async def in_process(self) -> AsyncIterator[httpx.AsyncClient]:
        """The same service in this process (its consumer on the real broker), and a client of
        its API; nothing to kill, for tests of what the API answers."""
        fields: dict[str, Any] = {
            name.removeprefix("NOTIFICATIONS_").lower(): value
            for name, value in self.service_env().items()
        }
        settings = NotificationsSettings(
            database_url=self.url, kafka_bootstrap_servers=self.infra.kafka_bootstrap, **fields
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://notifications"
            ) as client:
                yield client

    async def start(self) -> ServiceProcess:
        self.process = self.new_process()
        self.process.start()
        await self.process.wait_ready()
        return self.process

    @property
    def base_url(self) -> str:
        assert self.process is not None
        return base_url(self.process)

    async def publish(self, events: Sequence[tuple[EventData | None, str]]) -> list[str]:
        """Publish (event, key) pairs in order, as their producers would; None is a tombstone.

        Returns the CloudEvent ids (the tombstone's ``ce_id`` for a tombstone).
        """
        producer = AIOKafkaProducer(**self.infra.kafka_options(), acks="all")
        await producer.start()
        ids = []
        try:
            for event, key in events:
                event_id = str(uuid.uuid4())
                ids.append(event_id)
                if event is None:
                    topic = self.topics[CUSTOMER_CONTACTS.name]
                    await producer.send_and_wait(
                        topic, value=None, key=key.encode(), headers=[("ce_id", event_id.encode())]
                    )
                    continue
                record = encode(
                    Envelope(
                        id=event_id,
                        type=event.event_type,
                        source="/test",
                        subject=key,
                        time=datetime.now(UTC),
                        partition_key=key,
                        data=event.model_dump(mode="json"),
                    )
                )
                await producer.send_and_wait(
                    self.topics[event.topic],
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
        finally:
            await producer.stop()
        return ids

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def deliveries(self, order_ids: Sequence[str]) -> list[asyncpg.Record]:
        return await self.query(
            "SELECT * FROM deliveries WHERE order_id = ANY($1::text[]) ORDER BY id",
            list(order_ids),
        )

    async def settled(
        self, order_ids: Sequence[str], count: int, timeout: float = 60
    ) -> list[asyncpg.Record]:
        """Wait until ``count`` deliveries of these orders exist and none is pending."""
        return await eventually(
            lambda: self.deliveries(order_ids),
            until=lambda rows: len(rows) >= count and all(r["status"] != "pending" for r in rows),
            timeout=timeout,
            what=f"{count} settled deliveries",
        )


async def notifications_under_test(
    infra: Infra, sinks: Sinks, extra_env: dict[str, str] | None = None
) -> Notifications:
    prefix = unique_prefix()
    topics = {}
    for spec in (ORDERS, KITCHEN, CUSTOMER_CONTACTS):
        topics[spec.name] = await create_topic(infra, prefix + spec.name, spec.partitions)
    from tests.support.system import migrated_database  # system.py imports this module

    url = await migrated_database(infra, "notifications")
    return Notifications(infra, sinks, url, topics, f"{prefix}notifications", extra_env or {})


async def api(method: str, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(method, url, headers=headers)


# ------------------------------------------------------------------------------ events
def now() -> datetime:
    return datetime.now(UTC)


def contact(
    customer_id: str,
    name: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    sms_opt_in: bool = True,
    email_opt_in: bool = True,
) -> tuple[CustomerContactUpdated, str]:
    event = CustomerContactUpdated(
        customer_id=customer_id,
        name=name,
        email=email,
        phone=phone,
        sms_opt_in=sms_opt_in,
        email_opt_in=email_opt_in,
        updated_at=now(),
    )
    return event, customer_id


def placed(
    order_id: str,
    customer_id: str,
    *,
    fulfilment: str = "delivery",
    quantity: int = 2,
    tracking_token: str | None = None,
) -> tuple[OrderPlaced, str]:
    """OrderPlaced as the orders service publishes it; with ``tracking_token``, its hash too."""
    event = OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        lines=(
            OrderLine(
                pizza="Margherita", size="medium", quantity=quantity, unit_price=Decimal("9.50")
            ),
        ),
        total=Decimal("9.50") * quantity,
        placed_at=now(),
        fulfilment=fulfilment,
        tracking_token_sha256=None
        if tracking_token is None
        else tracking_token_sha256(tracking_token),
    )
    return event, order_id


def new_order_id() -> str:
    return str(uuid.uuid4())
