"""The composition root of the notifications service."""

from __future__ import annotations

from eventing.service import ConsumingService
from eventing.topics import ORDERS
from notifications.service_layer.handlers import SUBSCRIPTIONS
from notifications.settings import NotificationsConsumerSettings, NotificationsSettings


def bootstrap(settings: NotificationsSettings | None = None) -> ConsumingService:
    settings = settings or NotificationsSettings()
    return ConsumingService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[ORDERS.name],
        subscriptions=SUBSCRIPTIONS,
        consumer_settings=NotificationsConsumerSettings(),
    )
