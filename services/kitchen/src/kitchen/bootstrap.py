"""The composition root of the kitchen service: the one place that builds its dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.topics import TOPOLOGY
from eventing.outbox import Outbox
from kitchen.service_layer.broadcast import QueueBroadcaster
from kitchen.service_layer.commands import COMMAND_HANDLERS
from kitchen.service_layer.events import EVENT_HANDLERS
from kitchen.service_layer.unit_of_work import SOURCE, KitchenDependencies, UnitOfWork
from kitchen.settings import KitchenConsumerSettings, KitchenSettings
from service_kit.handlers import CommandBus, subscriptions
from service_kit.service import ConsumingService


@dataclass
class KitchenService(ConsumingService):
    """The kitchen's database and order-event consumer, plus its model, outbox and streams, and
    the bus the cooks' commands go through."""

    deps: KitchenDependencies
    stream_keepalive_seconds: float = 15.0
    stream_max_seconds: float = 3600.0
    commands: CommandBus[UnitOfWork] = field(init=False)

    def __post_init__(self) -> None:
        self.commands = CommandBus(COMMAND_HANDLERS, self.unit_of_work)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.deps)


def bootstrap(settings: KitchenSettings | None = None) -> KitchenService:
    settings = settings or KitchenSettings()
    deps = KitchenDependencies(
        model=settings.kitchen_model(),
        outbox=Outbox(SOURCE, topic_prefix=settings.outbox_topic_prefix),
        broadcaster=QueueBroadcaster(),
    )
    return KitchenService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[settings.orders_topic],
        topology=TOPOLOGY,
        subscriptions=subscriptions(EVENT_HANDLERS, deps),
        consumer_settings=KitchenConsumerSettings(),
        deps=deps,
        stream_keepalive_seconds=settings.stream_keepalive_seconds,
        stream_max_seconds=settings.stream_max_seconds,
    )
