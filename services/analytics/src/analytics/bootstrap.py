"""The composition root of the analytics service."""

from __future__ import annotations

from analytics.service_layer.handlers import SUBSCRIPTIONS
from analytics.settings import AnalyticsConsumerSettings, AnalyticsSettings
from contracts.topics import KITCHEN, ORDERS, TOPOLOGY
from service_kit.service import ConsumingService

# Only these: the customer-contacts topic (personal data) is never read by analytics.
PROJECTED_TOPICS: tuple[str, ...] = (ORDERS.name, KITCHEN.name)


def projected_topics(settings: AnalyticsSettings) -> list[str]:
    return [settings.topic_prefix + name for name in PROJECTED_TOPICS]


def bootstrap(settings: AnalyticsSettings | None = None) -> ConsumingService:
    settings = settings or AnalyticsSettings()
    return ConsumingService.build(
        settings,
        group_id=settings.consumer_group,
        topics=projected_topics(settings),
        topology=TOPOLOGY,
        subscriptions=SUBSCRIPTIONS,
        consumer_settings=AnalyticsConsumerSettings(),
    )
