"""The kitchen's settings: defaults, the environment, and the estimate model they configure."""

from __future__ import annotations

import pytest

from kitchen.settings import KitchenRelaySettings, KitchenSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITCHEN_DATABASE_URL", "postgresql+asyncpg://x/kitchen")
    settings = KitchenSettings()
    assert settings.orders_topic == "pizzeria.orders"
    assert settings.consumer_group == "kitchen"
    assert settings.outbox_topic_prefix == ""
    assert settings.stream_keepalive_seconds == 15
    model = settings.kitchen_model()
    assert (model.capacity, model.base_minutes, model.minutes_per_pizza) == (3, 6, 2)
    assert KitchenRelaySettings().metrics_port == 9102


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "KITCHEN_DATABASE_URL": "postgresql+asyncpg://x/kitchen",
        "KITCHEN_CAPACITY": "5",
        "KITCHEN_BASE_MINUTES": "4.5",
        "KITCHEN_MINUTES_PER_PIZZA": "1.5",
        "KITCHEN_ORDERS_TOPIC": "t1.pizzeria.orders",
        "KITCHEN_RELAY_METRICS_PORT": "9200",
    }.items():
        monkeypatch.setenv(name, value)
    model = KitchenSettings().kitchen_model()
    assert (model.capacity, model.base_minutes, model.minutes_per_pizza) == (5, 4.5, 1.5)
    assert KitchenSettings().orders_topic == "t1.pizzeria.orders"
    assert KitchenRelaySettings().metrics_port == 9200


def test_a_capacity_below_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITCHEN_DATABASE_URL", "postgresql+asyncpg://x/kitchen")
    monkeypatch.setenv("KITCHEN_CAPACITY", "0")
    with pytest.raises(ValueError, match="capacity"):
        KitchenSettings()
