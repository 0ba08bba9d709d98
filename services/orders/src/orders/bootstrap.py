"""The composition root of the orders service: the one place that builds its dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eventing.database import create_engine, session_factory
from eventing.outbox import Outbox
from orders.domain.menu import SEED_MENU, Pizza
from orders.service_layer.unit_of_work import UnitOfWork
from orders.settings import OrdersSettings

SOURCE = "/mariospizzeria/orders"


@dataclass
class OrdersContainer:
    settings: OrdersSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    menu: dict[str, Pizza]

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.outbox)

    async def close(self) -> None:
        await self.engine.dispose()


def bootstrap(settings: OrdersSettings | None = None) -> OrdersContainer:
    settings = settings or OrdersSettings()
    engine = create_engine(
        settings.database_url, pool_size=settings.database_pool_size, application_name="orders-api"
    )
    return OrdersContainer(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        outbox=Outbox(SOURCE),
        menu={pizza.name: pizza for pizza in SEED_MENU},
    )
