from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from eventing.settings import ConsumerSettings
from service_kit.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """Settings of the analytics service; every variable starts with ``ANALYTICS_``."""

    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore", frozen=True)

    service_name: str = "analytics"
    http_port: int = 8004
    consumer_group: str = "analytics"
    topic_prefix: str = Field(
        default="",
        description="Prepended to the names of the topics read (pizzeria.orders, "
        "pizzeria.kitchen); empty except in tests that isolate themselves on their own topics.",
    )


class AnalyticsConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_CONSUMER_", extra="ignore", frozen=True)
