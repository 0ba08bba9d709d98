from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from eventing.settings import ConsumerSettings, ServiceSettings
from eventing.topics import CUSTOMER_CONTACTS, KITCHEN, ORDERS


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
    sms_account_sid: str = "dev-account"
    sms_auth_token: SecretStr = SecretStr("dev-token")
    sms_from_number: str = "+390600000000"
    sms_timeout_seconds: float = Field(default=10.0, gt=0)

    # Delivery: the dispatchers (one per channel) and the late-order timer.
    worker_database_pool_size: int = Field(
        default=4,
        ge=1,
        description="Connections of the dispatchers and the timer, apart from the API's pool "
        "(a flood of requests must not hold up sending) and the consumer's.",
    )
    late_grace_seconds: float = Field(default=300.0, ge=0, description="Estimate + this = late.")
    dispatcher_poll_seconds: float = Field(default=0.5, gt=0)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_cap_seconds: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    contact_wait_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How long a delivery waits for its order's customer or contact details "
        "(they travel on other topics and may arrive later) before it is skipped.",
    )


class NotificationsConsumerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFICATIONS_CONSUMER_", extra="ignore", frozen=True
    )
