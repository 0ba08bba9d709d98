"""Settings shared by every service: Kafka, the database, HTTP and authentication.

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

from eventing.database import asyncpg_dsn
from eventing.kafka_security import KafkaSecurity
from service_kit.auth import AuthSettings, audience_of


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
    # Processes serving the port (service_kit.workers): each a whole instance of the service
    # (pools, consumer group member, limits); /metrics adds them up.
    http_workers: int = Field(default=1, ge=1, le=32)
    log_level: str = "INFO"
    database_pool_size: int = 10
    # The consumer's own connections (one lane per partition number, each one transaction at a
    # time; see eventing.consumer).
    consumer_database_pool_size: int = 6
    # Requests allowed to wait for their response to start; beyond it, 503 at once (at the
    # 60-80 placements/s measured with the whole system running on 2 cores, a queue of this
    # length takes about a second). 0: no limit.
    http_max_waiting_requests: int = Field(default=64, ge=0)
    # What one request or client may ask (see service_kit.limits, service_kit.http.RequestLimits).
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
        return asyncpg_dsn(self.database_url)
