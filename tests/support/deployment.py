"""What the deployments (docker-compose.yml, the Helm chart) are checked against: the processes
of the system, the ports they serve on, the settings classes each reads, and each service's real
CLI, run up to the point where it has read its settings."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pytest
from pydantic_settings import BaseSettings

import service_kit.service
from analytics.settings import AnalyticsConsumerSettings, AnalyticsSettings
from eventing.kafka_security import KafkaSecurity
from eventing.settings import RelaySettings
from kitchen.settings import KitchenConsumerSettings, KitchenRelaySettings, KitchenSettings
from notifications.settings import NotificationsConsumerSettings, NotificationsSettings
from orders.settings import OrdersConsumerSettings, OrdersRelaySettings, OrdersSettings
from service_kit.auth import AuthSettings
from service_kit.settings import ServiceSettings

# What the system is made of: the processes of each service, and the port each one serves on.
EXPECTED_PROCESSES = {
    ("orders", "migrate"),
    ("orders", "serve"),
    ("orders", "relay"),
    ("kitchen", "migrate"),
    ("kitchen", "serve"),
    ("kitchen", "relay"),
    ("notifications", "migrate"),
    ("notifications", "serve"),
    ("analytics", "migrate"),
    ("analytics", "serve"),
}
HTTP_PORTS = {"orders": 8001, "kitchen": 8002, "notifications": 8003, "analytics": 8004}
RELAY_METRICS_PORTS = {"orders": 9101, "kitchen": 9102}

# What a deployment's Kafka gives every topic: three copies of each partition, and a write with
# acks=all (the producers' setting) waits for two of them, so losing one broker loses no
# acknowledged write and stops none. The Helm chart's values and docker-compose.yml's cluster are
# both held to it.
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2

# The settings classes each service's processes read: the CLI's (first), then the relay's and the
# consumer's. tests/unit/test_compose.py checks that the CLI really uses the first (and the
# relay's).
SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "orders": (OrdersSettings, OrdersRelaySettings, OrdersConsumerSettings),
    "kitchen": (KitchenSettings, KitchenRelaySettings, KitchenConsumerSettings),
    "notifications": (NotificationsSettings, NotificationsConsumerSettings),
    "analytics": (AnalyticsSettings, AnalyticsConsumerSettings),
}
SHARED_KAFKA_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"  # read without a prefix by ServiceSettings


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The variables a settings class reads: its env prefix + each field name."""
    prefix = settings.model_config.get("env_prefix", "")
    names = {f"{prefix}{field}".upper() for field in settings.model_fields}
    if issubclass(settings, ServiceSettings):
        # Read without a prefix: the broker, this process's principal, and how tokens are trusted.
        names.add(SHARED_KAFKA_VARIABLE)
        for shared in (KafkaSecurity, AuthSettings):
            shared_prefix = shared.model_config.get("env_prefix", "")
            names |= {f"{shared_prefix}{field}".upper() for field in shared.model_fields}
    return names


def console_script(name: str) -> Callable[..., Any]:
    (script,) = entry_points(group="console_scripts", name=name)
    return script.load()  # type: ignore[no-any-return]


def use_environment(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    """Exactly ``environment`` for every variable the system reads (none from this shell)."""
    prefixes = tuple(
        settings.model_config.get("env_prefix", "")
        for classes in SETTINGS.values()
        for settings in classes
    )
    for key in list(os.environ):
        if key.upper().startswith((*prefixes, "KAFKA_", "AUTH_")) or key.upper() in {
            SHARED_KAFKA_VARIABLE,
            "DATABASE_URL",
        }:
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)


class _Started(Exception):
    """Raised where the process would start working, after its CLI read its settings."""


@dataclass
class Started:
    settings: ServiceSettings
    relay: RelaySettings | None
    settings_class: type[ServiceSettings]
    relay_class: type[RelaySettings] | None


def start_service_cli(
    monkeypatch: pytest.MonkeyPatch, script: str, argv: list[str], environment: dict[str, str]
) -> Started:
    """Run the service's real CLI on ``argv`` in ``environment``, up to reading its settings.

    The CLI's own parser decides whether ``argv`` is a command it has (SystemExit 2 if not); then,
    instead of migrating, serving or relaying, the settings it would use are read and returned.
    """
    main = console_script(script)
    module = sys.modules[main.__module__]
    assert hasattr(module, "service_main"), f"{script} is not a service CLI"
    real_service_main = service_kit.service.service_main
    started: dict[str, Any] = {}

    def service_main(name: str, **kwargs: Any) -> int:
        settings, relay_settings = kwargs["settings"], kwargs.get("relay_settings")

        def read_settings() -> ServiceSettings:
            started["settings"] = settings()
            started["relay"] = relay_settings() if relay_settings is not None else None
            started["settings_class"], started["relay_class"] = settings, relay_settings
            raise _Started

        return real_service_main(name, **{**kwargs, "settings": read_settings})

    monkeypatch.setattr(module, "service_main", service_main)
    use_environment(monkeypatch, environment)
    try:
        main(argv)
    except _Started:
        return Started(**started)
    except SystemExit as exit_:
        pytest.fail(f"`{script} {' '.join(argv)}` is not a command of {script} (exit {exit_.code})")
    pytest.fail(f"`{script} {' '.join(argv)}` returned without reading its settings")
