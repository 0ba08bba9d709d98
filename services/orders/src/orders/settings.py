from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from eventing.settings import RelaySettings, ServiceSettings


class OrdersSettings(ServiceSettings):
    """Settings of the orders service; every variable starts with ``ORDERS_``."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)

    service_name: str = "orders"
    http_port: int = 8001


class OrdersRelaySettings(RelaySettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_RELAY_", extra="ignore", frozen=True)

    metrics_port: int = 9101
