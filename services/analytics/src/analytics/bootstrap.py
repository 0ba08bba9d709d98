"""The composition root of the analytics service."""

from __future__ import annotations

from dataclasses import dataclass

from analytics.service_layer.events import EVENT_HANDLERS
from analytics.settings import AnalyticsConsumerSettings, AnalyticsSettings
from contracts.topics import KITCHEN, ORDERS, TOPOLOGY
from eventing.consumer import Subscription
from service_kit.handlers import subscriptions
from service_kit.service import ConsumingService

# Only these: the customer-contacts topic (personal data) is never read by analytics.
PROJECTED_TOPICS: tuple[str, ...] = (ORDERS.name, KITCHEN.name)


@dataclass
class AnalyticsService(ConsumingService):
    """The analytics service: its database, read by the API, and the consumer that fills it."""


def projected_topics(settings: AnalyticsSettings) -> list[str]:
    return [settings.topic_prefix + name for name in PROJECTED_TOPICS]


def projections() -> list[Subscription]:
    """The event handlers as subscriptions, for the live consumer and the rebuild alike; they
    need no dependencies."""
    return subscriptions(EVENT_HANDLERS, None)


def bootstrap(settings: AnalyticsSettings | None = None) -> AnalyticsService:
    settings = settings or AnalyticsSettings()
    return AnalyticsService.build(
        settings,
        group_id=settings.consumer_group,
        topics=projected_topics(settings),
        topology=TOPOLOGY,
        subscriptions=projections(),
        consumer_settings=AnalyticsConsumerSettings(),
    )
