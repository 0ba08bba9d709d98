"""Settings shared by every service: Kafka, the database, and the eventing runtime.

Each service subclasses ``ServiceSettings`` with its own env prefix (``ORDERS_``, ``KITCHEN_``...).
Kafka's bootstrap servers are the same for every service, so ``KAFKA_BOOTSTRAP_SERVERS`` is read
without a prefix (a prefixed variable wins when both are set).
"""

from __future__ import annotations

import os
from ipaddress import ip_address
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventing.auth import AuthSettings, audience_of
from eventing.cloudevents_kafka import DEFAULT_LIMITS, DecodeLimits
from eventing.kafka_security import KafkaSecurity


def is_local_host(host: str | None) -> bool:
    """Whether ``host`` is this machine (a loopback address or ``localhost``): traffic to it never
    crosses a network, so it may go in clear even outside development."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = "service"
    database_url: str = Field(
        description="SQLAlchemy URL of the service's own database (postgresql+asyncpg://...)."
    )
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    # This process's Kafka principal, from the unprefixed KAFKA_* variables.
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    database_pool_size: int = 10
    # The consumer's own connections (one lane per partition number, each one transaction at a
    # time; see eventing.consumer).
    consumer_database_pool_size: int = 6
    # Requests allowed to wait for their response to start; beyond it, 503 at once (at the
    # 60-80 placements/s measured with the whole system running on 2 cores, a queue of this
    # length takes about a second). 0: no limit.
    http_max_waiting_requests: int = Field(default=64, ge=0)
    # What one request or client may ask (see eventing.limits and eventing.http.RequestLimits).
    # A larger body is refused with 413 before it is read.
    http_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Server-Sent Events streams open at once in this process; one more is a 503. 0: no limit.
    http_max_streams: int = Field(default=100, ge=0)
    # Addresses of reverse proxies whose X-Forwarded-For names the client (uvicorn's
    # forwarded_allow_ips). Empty: none, so a client cannot pick the address it is limited by.
    http_trusted_proxies: str = ""
    # The aud a bearer token must name to be accepted here (default: audience_of(service_name)).
    auth_audience: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shared_kafka_bootstrap(cls, values: Any) -> Any:
        if isinstance(values, dict) and "kafka_bootstrap_servers" not in values:
            shared = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if shared:
                values = {**values, "kafka_bootstrap_servers": shared}
        return values

    @property
    def audience(self) -> str:
        return self.auth_audience or audience_of(self.service_name)

    def refusals(self, auth: AuthSettings) -> list[str]:
        """Why this service must not serve with these settings (none by default): the checks
        that need the deployment's environment, which a service adds to."""
        return []

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL in the form asyncpg itself accepts."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class RelaySettings(BaseSettings):
    """Tuning of an outbox relay process; read with the producing service's prefix + ``RELAY_``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    batch_size: int = 500
    idle_poll_seconds: float = 1.0  # the longest wait between polls when nothing is notified
    metrics_port: int = 9100
    metrics_host: str = "127.0.0.1"
    max_attempts: int = 10
    linger_ms: int = 2
    # After an error that cost the relay its session, it waits a random time up to this (growing
    # from 0.2 s with each failure in a row, back to the start once it works again).
    reconnect_max_seconds: float = Field(default=5.0, gt=0)


class ConsumerSettings(BaseSettings):
    """Tuning of a consumer runtime; read with the consuming service's prefix + ``CONSUMER_``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    max_attempts: int = 5
    retry_base_seconds: float = 0.1
    retry_max_seconds: float = 5.0
    stall_timeout_seconds: float = 60.0
    # The longest pause before a Kafka consumer that died or stalled is replaced.
    restart_max_seconds: float = Field(default=10.0, gt=0)
    max_poll_records: int = 500
    # Events applied in one database transaction (their inbox rows and every handler's effects):
    # one commit per batch instead of one per event and handler. 1 gives each its own.
    batch_size: int = 100
    auto_offset_reset: str = "earliest"
    # A record larger than this (key + value + headers) is dead-lettered without being parsed.
    max_record_bytes: int = Field(default=DEFAULT_LIMITS.max_record_bytes, gt=0)
    # JSON nested deeper than this is dead-lettered (checked without recursion; ours nest 4).
    max_json_depth: int = Field(default=DEFAULT_LIMITS.max_json_depth, gt=0)
    # How long a dead letter may keep failing to publish with errors worth retrying before it is
    # kept in the dead_letters table instead and the partition moves on.
    dead_letter_publish_timeout_seconds: float = Field(default=30.0, gt=0)

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_record_bytes=self.max_record_bytes, max_json_depth=self.max_json_depth
        )
