"""The composition root of the kitchen service: the one place that builds its dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.topics import TOPOLOGY
from eventing.outbox import Outbox
from kitchen.service_layer.broadcast import QueueBroadcaster
from kitchen.service_layer.handlers import kitchen_subscriptions
from kitchen.service_layer.unit_of_work import SOURCE, Kitchen
from kitchen.settings import KitchenConsumerSettings, KitchenSettings
from service_kit.service import ConsumingService


@dataclass
class KitchenService(ConsumingService):
    """The kitchen's database and order-event consumer, plus its model, outbox and streams."""

    kitchen: Kitchen | None = None
    stream_keepalive_seconds: float = 15.0
    stream_max_seconds: float = 3600.0

    @property
    def deps(self) -> Kitchen:
        assert self.kitchen is not None
        return self.kitchen


def bootstrap(settings: KitchenSettings | None = None) -> KitchenService:
    settings = settings or KitchenSettings()
    kitchen = Kitchen(
        model=settings.kitchen_model(),
        outbox=Outbox(SOURCE, topic_prefix=settings.outbox_topic_prefix),
        broadcaster=QueueBroadcaster(),
    )
    return KitchenService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[settings.orders_topic],
        topology=TOPOLOGY,
        subscriptions=kitchen_subscriptions(kitchen),
        consumer_settings=KitchenConsumerSettings(),
        kitchen=kitchen,
        stream_keepalive_seconds=settings.stream_keepalive_seconds,
        stream_max_seconds=settings.stream_max_seconds,
    )
