from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from eventing.settings import ConsumerSettings, RelaySettings
from service_kit.auth import MINIMUM_SECRET_BYTES, AuthSettings
from service_kit.limits import Rate, RateSpec
from service_kit.settings import ServiceSettings, is_local_host


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
        "(orders.entrypoints.inbound_signatures).",
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

    # Customers sign in with a one-time code sent to their phone or email by the notifications
    # service. With the URL or the token unset, sign-in answers 503 saying so.
    notifications_url: str | None = Field(
        default=None,
        description="Base URL of the notifications service, which sends the codes "
        "(e.g. http://127.0.0.1:8003).",
    )
    notifications_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the notifications service's POST /sign-in-codes; the same "
        "as its NOTIFICATIONS_SIGN_IN_TOKEN.",
    )
    notifications_timeout_seconds: float = Field(
        default=15.0, gt=0, description="How long a code may take to be handed to a provider."
    )
    sign_in_code_secret: SecretStr | None = Field(
        default=None,
        description="Key of the codes' and contacts' HMACs. Unset: derived from "
        "AUTH_JWT_SECRET (sign-in needs that secret anyway, to sign the tokens).",
    )
    sign_in_code_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    sign_in_code_max_attempts: int = Field(default=5, ge=1, le=20)
    # Each code is an SMS or an email to someone: per contact and per client address, as the
    # placements; wrong tries per client address on top of each code's own attempts.
    sign_in_codes_per_contact: Rate = RateSpec.parse("5/hour")
    sign_in_codes_per_client: Rate = RateSpec.parse("20/hour")
    sign_in_attempts_per_client: Rate = RateSpec.parse("60/hour")
    customer_token_ttl_seconds: int = Field(
        default=3600,
        gt=0,
        description="Lifetime of the customer tokens sign-in issues; at most "
        "AUTH_MAX_TOKEN_LIFETIME_SECONDS.",
    )

    @field_validator(
        "inbound_hmac_secret", "inbound_bearer_token", "notifications_token", "sign_in_code_secret"
    )
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MINIMUM_SECRET_BYTES:
            raise ValueError(f"must be at least {MINIMUM_SECRET_BYTES} bytes when set")
        return value

    def refusals(self, auth: AuthSettings) -> list[str]:
        refusals = []
        if not auth.uses_jwks and self.customer_token_ttl_seconds > auth.max_token_lifetime_seconds:
            refusals.append(
                f"ORDERS_CUSTOMER_TOKEN_TTL_SECONDS ({self.customer_token_ttl_seconds}) is longer "
                f"than AUTH_MAX_TOKEN_LIFETIME_SECONDS ({auth.max_token_lifetime_seconds})"
            )
        if auth.is_development or self.notifications_url is None:
            return refusals
        url = urlsplit(self.notifications_url)
        if url.scheme != "https" and not is_local_host(url.hostname):
            refusals.append(
                "ORDERS_NOTIFICATIONS_URL must be https:// unless it is on this host (the "
                "request carries a sign-in code and the bearer token)"
            )
        return refusals


class OrdersRelaySettings(RelaySettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_RELAY_", extra="ignore", frozen=True)

    metrics_port: int = 9101


class OrdersConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_CONSUMER_", extra="ignore", frozen=True)
