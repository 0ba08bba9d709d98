"""Outside development a service refuses to start on settings anyone could have guessed."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from notifications.settings import NotificationsSettings
from orders.settings import OrdersSettings
from service_kit.auth import AuthSettings
from service_kit.service import EXIT_CONFIGURATION_ERROR

STRONG = "a-random-secret-that-is-longer-than-32-bytes"
PRODUCTION = AuthSettings(environment="production", jwt_secret=STRONG)


def serve(service: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``<service> serve`` with only ``env`` of the AUTH_* and service settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "NOTIFICATIONS_"))}
    return subprocess.run(
        [sys.executable, "-m", service, "serve", "--log-format", "text"],
        env={
            **clean,
            f"{service.upper()}_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            f"{service.upper()}_HTTP_PORT": "1",  # never reached: it refuses before binding
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("service", ["orders", "kitchen", "analytics"])
def test_a_service_refuses_the_development_secret_by_default(service: str) -> None:
    # No AUTH_ENVIRONMENT at all: production, so the public secret is refused.
    result = serve(service)

    assert result.returncode == EXIT_CONFIGURATION_ERROR
    assert f"{service} serve: refusing to start" in result.stderr
    assert "AUTH_JWT_SECRET is the development default" in result.stderr
    assert "Traceback" not in result.stderr


def test_notifications_refuses_the_development_sinks_outside_development() -> None:
    result = serve("notifications", AUTH_JWT_SECRET=STRONG, NOTIFICATIONS_SMTP_HOST="smtp.example")

    assert result.returncode == EXIT_CONFIGURATION_ERROR
    assert "NOTIFICATIONS_SMS_ACCOUNT_SID / NOTIFICATIONS_SMS_AUTH_TOKEN" in result.stderr
    assert "SMTP to smtp.example would be unencrypted" in result.stderr


def test_notifications_settings_for_production_are_accepted() -> None:
    settings = NotificationsSettings(
        database_url="postgresql+asyncpg://x@db/notifications",
        smtp_host="smtp.example",
        smtp_starttls=True,
        sms_endpoint_url="https://api.sms.example/Accounts/{account_sid}/Messages.json",
        sms_account_sid="AC123",
        sms_auth_token="a-real-token",
    )

    assert settings.refusals(PRODUCTION) == []
    assert settings.refusals(AuthSettings(environment="development")) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sms_endpoint_url": "http://sms.example/{account_sid}"}, "must be https://"),
        ({"smtp_starttls": False}, "would be unencrypted"),
        ({"smtp_validate_certs": False}, "trusts any certificate"),
        ({"sms_auth_token": "dev-token"}, "are the development sink's"),
    ],
)
def test_notifications_settings_refuse_what_is_unsafe_off_the_box(
    change: dict[str, Any], reason: str
) -> None:
    settings = NotificationsSettings(
        **{
            "database_url": "postgresql+asyncpg://x@db/notifications",
            "smtp_host": "smtp.example",
            "smtp_starttls": True,
            "sms_endpoint_url": "https://api.sms.example/{account_sid}",
            "sms_account_sid": "AC123",
            "sms_auth_token": "a-real-token",
            **change,
        }
    )

    assert any(reason in refusal for refusal in settings.refusals(PRODUCTION))


def test_a_dispatch_lease_a_send_could_outlast_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least four times the longest provider timeout"):
        NotificationsSettings(
            database_url="postgresql+asyncpg://x@db/notifications",
            sms_timeout_seconds=20,
            dispatch_lease_seconds=60,
        )


def test_the_development_sinks_on_this_host_are_fine_in_development() -> None:
    settings = NotificationsSettings(database_url="postgresql+asyncpg://x@db/notifications")

    assert settings.refusals(AuthSettings(environment="development")) == []
    assert len(settings.refusals(PRODUCTION)) == 1  # the credentials; the sinks are local


def orders_settings(**values: object) -> OrdersSettings:
    return OrdersSettings(database_url="postgresql+asyncpg://x@db/orders", **values)  # type: ignore[arg-type]


def test_orders_settings_for_sign_in_in_production_are_accepted() -> None:
    settings = orders_settings(
        notifications_url="https://notifications.internal:8003",
        notifications_token="t" * 32,
    )

    assert settings.refusals(PRODUCTION) == []
    # On this host, the local stack's plain HTTP is fine too.
    assert orders_settings(notifications_url="http://127.0.0.1:8003").refusals(PRODUCTION) == []


def test_orders_refuse_to_send_codes_in_clear_off_the_box_and_long_customer_tokens() -> None:
    remote = orders_settings(notifications_url="http://notifications.internal:8003")
    [refusal] = remote.refusals(PRODUCTION)
    assert "ORDERS_NOTIFICATIONS_URL must be https://" in refusal
    assert remote.refusals(AuthSettings(environment="development")) == []

    long_lived = orders_settings(
        customer_token_ttl_seconds=PRODUCTION.max_token_lifetime_seconds + 1
    )
    for auth in (PRODUCTION, AuthSettings(environment="development")):
        [refusal] = long_lived.refusals(auth)
        assert "ORDERS_CUSTOMER_TOKEN_TTL_SECONDS" in refusal


@pytest.mark.parametrize("field", ["notifications_token", "sign_in_code_secret"])
def test_orders_sign_in_secrets_are_long_enough(field: str) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        orders_settings(**{field: "short"})
    with pytest.raises(ValueError, match="at least 32 bytes"):
        NotificationsSettings(
            database_url="postgresql+asyncpg://x@db/notifications", sign_in_token="short"
        )
