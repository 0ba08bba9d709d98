"""The composition root of the kitchen service."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eventing.consumer import EventConsumer
from eventing.database import create_engine, session_factory
from eventing.topics import ORDERS
from kitchen.service_layer.handlers import SUBSCRIPTIONS
from kitchen.settings import KitchenConsumerSettings, KitchenSettings


@dataclass
class KitchenContainer:
    settings: KitchenSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    consumer: EventConsumer

    async def close(self) -> None:
        await self.engine.dispose()


def bootstrap(settings: KitchenSettings | None = None) -> KitchenContainer:
    settings = settings or KitchenSettings()
    engine = create_engine(
        settings.database_url, pool_size=settings.database_pool_size, application_name="kitchen"
    )
    sessions = session_factory(engine)
    consumer = EventConsumer(
        group_id=settings.consumer_group,
        topics=[ORDERS.name],
        subscriptions=SUBSCRIPTIONS,
        sessions=sessions,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        settings=KitchenConsumerSettings(),
    )
    return KitchenContainer(settings, engine, sessions, consumer)
