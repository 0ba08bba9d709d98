"""The composition root of the orders service: the one place that builds its dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventing.limits import RateLimit, RateSpec
from eventing.outbox import Outbox
from eventing.service import ConsumingService
from eventing.topics import KITCHEN
from orders.service_layer.kitchen_events import kitchen_subscriptions
from orders.service_layer.unit_of_work import UnitOfWork
from orders.settings import OrdersConsumerSettings, OrdersSettings

SOURCE = "/mariospizzeria/orders"


@dataclass
class OrdersService(ConsumingService):
    """The orders API's database, kitchen-event consumer, token verifier and outbox."""

    outbox: Outbox | None = None
    placements_per_client: RateLimit = field(default_factory=lambda: RateLimit(RateSpec(0, 1)))
    placements_per_contact: RateLimit = field(default_factory=lambda: RateLimit(RateSpec(0, 1)))

    def unit_of_work(self) -> UnitOfWork:
        assert self.outbox is not None
        return UnitOfWork(self.sessions, self.outbox)


def bootstrap(settings: OrdersSettings | None = None) -> OrdersService:
    settings = settings or OrdersSettings()
    outbox = Outbox(SOURCE)
    return OrdersService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[KITCHEN.name],
        subscriptions=kitchen_subscriptions(outbox),
        consumer_settings=OrdersConsumerSettings(),
        outbox=outbox,
        placements_per_client=RateLimit(settings.placements_per_client),
        placements_per_contact=RateLimit(settings.placements_per_contact),
    )
