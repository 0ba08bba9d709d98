"""The composition root of the kitchen service."""

from __future__ import annotations

from eventing.service import ConsumingService
from eventing.topics import ORDERS
from kitchen.service_layer.handlers import SUBSCRIPTIONS
from kitchen.settings import KitchenConsumerSettings, KitchenSettings


def bootstrap(settings: KitchenSettings | None = None) -> ConsumingService:
    settings = settings or KitchenSettings()
    return ConsumingService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[ORDERS.name],
        subscriptions=SUBSCRIPTIONS,
        consumer_settings=KitchenConsumerSettings(),
    )
