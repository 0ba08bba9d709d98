from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from eventing.auth import MINIMUM_SECRET_BYTES
from eventing.limits import Rate, RateSpec
from eventing.settings import ConsumerSettings, RelaySettings, ServiceSettings


class OrdersSettings(ServiceSettings):
    """Settings of the orders service; every variable starts with ``ORDERS_``."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)

    service_name: str = "orders"
    http_port: int = 8001
    consumer_group: str = "orders"
    # POST /orders per client address and per phone number or email (each placement sends an
    # SMS and an email); beyond it a 429 with Retry-After. "off" lifts a limit.
    placements_per_client: Rate = RateSpec.parse("30/minute")
    placements_per_contact: Rate = RateSpec.parse("10/hour")
    # Inbound CloudEvents (POST /cloudevents): a sender authenticates with either. With neither
    # set, the endpoint refuses every request (401).
    inbound_hmac_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret of the X-Signature: t=<unix seconds>,v1=<hex> HMAC "
        "(orders.inbound_signatures).",
    )
    inbound_bearer_token: SecretStr | None = Field(
        default=None, description="Token a sender presents as Authorization: Bearer <token>."
    )
    # How far a signature's timestamp may be from our clock, either way. Replayed unchanged, a
    # signed request is a duplicate (source, id), and under a new id it no longer verifies; the
    # window bounds how long a captured request that never arrived stays usable. It must also
    # cover the sender's clock skew and the request's transit; the cap keeps "replay-proof" true.
    inbound_signature_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="Largest difference between an X-Signature's t= and now, in seconds.",
    )
    # Deprecated, for one release: the body-only X-Signature: sha256=<hex> binds a request to
    # neither its event id nor a time, so a captured request replays forever under new ids.
    inbound_accept_body_only_signature: bool = Field(
        default=False,
        description="Also admit the deprecated body-only X-Signature: sha256=<hex>.",
    )

    @field_validator("inbound_hmac_secret", "inbound_bearer_token")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MINIMUM_SECRET_BYTES:
            raise ValueError(f"must be at least {MINIMUM_SECRET_BYTES} bytes when set")
        return value


class OrdersRelaySettings(RelaySettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_RELAY_", extra="ignore", frozen=True)

    metrics_port: int = 9101


class OrdersConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_CONSUMER_", extra="ignore", frozen=True)
