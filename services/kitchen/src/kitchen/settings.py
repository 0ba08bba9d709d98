from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contracts.topics import ORDERS
from eventing.settings import ConsumerSettings, RelaySettings
from kitchen.domain.estimates import KitchenModel
from service_kit.settings import ServiceSettings


class KitchenSettings(ServiceSettings):
    """Settings of the kitchen service; every variable starts with ``KITCHEN_``."""

    model_config = SettingsConfigDict(env_prefix="KITCHEN_", extra="ignore", frozen=True)

    service_name: str = "kitchen"
    http_port: int = 8002
    consumer_group: str = "kitchen"
    orders_topic: str = Field(
        default=ORDERS.name, description="The topic of order events the kitchen consumes."
    )
    outbox_topic_prefix: str = Field(
        default="",
        description="Prefix of the topics the kitchen's events are written for (tests, shared "
        "clusters); empty in production.",
    )
    capacity: int = Field(default=3, ge=1, description="Orders cooking at once, at most.")
    base_minutes: float = Field(
        default=6.0, ge=0, description="Cook time of any order (see kitchen.domain.estimates)."
    )
    minutes_per_pizza: float = Field(default=2.0, ge=0, description="Cook time per pizza.")
    stream_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alive comments on /queue/stream."
    )
    stream_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="A /queue/stream ends after this long at most (and when the token it was "
        "opened with expires); the display then reconnects with its token.",
    )

    def kitchen_model(self) -> KitchenModel:
        return KitchenModel(
            capacity=self.capacity,
            base_minutes=self.base_minutes,
            minutes_per_pizza=self.minutes_per_pizza,
        )


class KitchenConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="KITCHEN_CONSUMER_", extra="ignore", frozen=True)


class KitchenRelaySettings(RelaySettings):
    model_config = SettingsConfigDict(env_prefix="KITCHEN_RELAY_", extra="ignore", frozen=True)

    metrics_port: int = 9102
