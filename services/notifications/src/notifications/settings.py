from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from eventing.settings import ConsumerSettings, ServiceSettings


class NotificationsSettings(ServiceSettings):
    """Settings of the notifications service; every variable starts with ``NOTIFICATIONS_``."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore", frozen=True)

    service_name: str = "notifications"
    http_port: int = 8003
    consumer_group: str = "notifications"


class NotificationsConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFICATIONS_CONSUMER_", extra="ignore", frozen=True
    )
