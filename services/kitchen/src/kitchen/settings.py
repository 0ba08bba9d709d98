from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from eventing.settings import ConsumerSettings, ServiceSettings


class KitchenSettings(ServiceSettings):
    """Settings of the kitchen service; every variable starts with ``KITCHEN_``."""

    model_config = SettingsConfigDict(env_prefix="KITCHEN_", extra="ignore", frozen=True)

    service_name: str = "kitchen"
    http_port: int = 8002
    consumer_group: str = "kitchen"


class KitchenConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="KITCHEN_CONSUMER_", extra="ignore", frozen=True)
