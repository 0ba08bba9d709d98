"""The composition root of the analytics service."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from analytics.service_layer.handlers import SUBSCRIPTIONS
from analytics.settings import AnalyticsConsumerSettings, AnalyticsSettings
from eventing.consumer import EventConsumer
from eventing.database import create_engine, session_factory
from eventing.topics import ORDERS


@dataclass
class AnalyticsContainer:
    settings: AnalyticsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    consumer: EventConsumer

    async def close(self) -> None:
        await self.engine.dispose()


def bootstrap(settings: AnalyticsSettings | None = None) -> AnalyticsContainer:
    settings = settings or AnalyticsSettings()
    engine = create_engine(
        settings.database_url, pool_size=settings.database_pool_size, application_name="analytics"
    )
    sessions = session_factory(engine)
    consumer = EventConsumer(
        group_id=settings.consumer_group,
        topics=[ORDERS.name],
        subscriptions=SUBSCRIPTIONS,
        sessions=sessions,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        settings=AnalyticsConsumerSettings(),
    )
    return AnalyticsContainer(settings, engine, sessions, consumer)
