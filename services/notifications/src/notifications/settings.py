from __future__ import annotations

from typing import Final, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from contracts.topics import CUSTOMER_CONTACTS, KITCHEN, ORDERS
from eventing.settings import ConsumerSettings
from service_kit.auth import MINIMUM_SECRET_BYTES, AuthSettings
from service_kit.settings import ServiceSettings, is_local_host

# The credentials of the development sinks (deploy/local/stack.sh), public in this repository.
DEVELOPMENT_SMS_ACCOUNT: Final = "dev-account"
DEVELOPMENT_SMS_TOKEN: Final = "dev-token"  # noqa: S105


class NotificationsSettings(ServiceSettings):
    """Settings of the notifications service; every variable starts with ``NOTIFICATIONS_``."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore", frozen=True)

    service_name: str = "notifications"
    http_port: int = 8003
    consumer_group: str = "notifications"
    orders_topic: str = ORDERS.name
    kitchen_topic: str = KITCHEN.name
    contacts_topic: str = CUSTOMER_CONTACTS.name

    # Email over SMTP (defaults: the dev sink of deploy/local/stack.sh).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade with STARTTLS after EHLO.")
    smtp_use_tls: bool = Field(default=False, description="Implicit TLS (SMTPS, port 465).")
    smtp_validate_certs: bool = True
    smtp_from: str = "Mario's Pizzeria <orders@mariospizzeria.example>"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    # SMS through a Twilio-style HTTP provider: form POST with basic auth (account sid, token).
    sms_endpoint_url: str = Field(
        default="http://127.0.0.1:8025/2010-04-01/Accounts/{account_sid}/Messages.json",
        description="Where messages are POSTed; {account_sid} is replaced by the account sid.",
    )
    sms_account_sid: str = DEVELOPMENT_SMS_ACCOUNT
    sms_auth_token: SecretStr = SecretStr(DEVELOPMENT_SMS_TOKEN)
    sms_from_number: str = "+390600000000"
    sms_timeout_seconds: float = Field(default=10.0, gt=0)

    # Delivery: the dispatchers (one per channel) and the late-order timer.
    worker_database_pool_size: int = Field(
        default=2,
        ge=1,
        description="Connections of the late-order timer, apart from the API's pool (a flood "
        "of requests must not hold up late warnings) and the consumer's; each dispatcher keeps "
        "one connection of its own besides.",
    )
    late_grace_seconds: float = Field(default=300.0, ge=0, description="Estimate + this = late.")
    dispatcher_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often an idle dispatcher looks for due deliveries it was not told of "
        "(retries, other instances' deliveries); this process's own wake it at once.",
    )
    dispatch_batch_size: int = Field(
        default=20,
        ge=1,
        description="Deliveries a dispatcher leases at once (one statement), then sends one by "
        "one.",
    )
    dispatch_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long leased deliveries are kept from other instances. A send starts "
        "only while half of it is left and gets a quarter of it at most; after a crash, what the "
        "crashed instance leased and did not send waits this long. At least four times the "
        "longest provider timeout.",
    )
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_cap_seconds: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    contact_wait_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How long a delivery waits for its order's customer or contact details "
        "(they travel on other topics and may arrive later) before it is skipped.",
    )

    # POST /sign-in-codes: the orders service hands over sign-in codes with this bearer token
    # (its ORDERS_NOTIFICATIONS_TOKEN). Unset: every request is refused (401).
    sign_in_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the orders service presents to send sign-in codes.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Self:
        slowest = max(self.smtp_timeout_seconds, self.sms_timeout_seconds)
        if self.dispatch_lease_seconds < 4 * slowest:
            raise ValueError(
                f"dispatch_lease_seconds ({self.dispatch_lease_seconds:g}) must be at least four "
                f"times the longest provider timeout ({slowest:g} s): a send gets a quarter of "
                "the lease"
            )
        return self

    @field_validator("sign_in_token")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MINIMUM_SECRET_BYTES:
            raise ValueError(f"must be at least {MINIMUM_SECRET_BYTES} bytes when set")
        return value

    def refusals(self, auth: AuthSettings) -> list[str]:
        """Outside development: no development credentials, nothing sent in clear off the box."""
        if auth.is_development:
            return []
        refusals = []
        if (
            self.sms_account_sid == DEVELOPMENT_SMS_ACCOUNT
            or self.sms_auth_token.get_secret_value() == DEVELOPMENT_SMS_TOKEN
        ):
            refusals.append(
                "NOTIFICATIONS_SMS_ACCOUNT_SID / NOTIFICATIONS_SMS_AUTH_TOKEN are the development "
                "sink's; set the SMS provider's"
            )
        endpoint = urlsplit(self.sms_endpoint_url)
        if endpoint.scheme != "https" and not is_local_host(endpoint.hostname):
            refusals.append(
                "NOTIFICATIONS_SMS_ENDPOINT_URL must be https:// unless it is on this host "
                "(the request carries the provider's credentials and the message)"
            )
        if not (self.smtp_starttls or self.smtp_use_tls) and not is_local_host(self.smtp_host):
            refusals.append(
                f"SMTP to {self.smtp_host} would be unencrypted: set NOTIFICATIONS_SMTP_STARTTLS "
                f"or NOTIFICATIONS_SMTP_USE_TLS"
            )
        if (self.smtp_starttls or self.smtp_use_tls) and not self.smtp_validate_certs:
            refusals.append(
                "NOTIFICATIONS_SMTP_VALIDATE_CERTS=false: TLS that trusts any certificate "
                "protects nothing"
            )
        return refusals


class NotificationsConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFICATIONS_CONSUMER_", extra="ignore", frozen=True
    )
