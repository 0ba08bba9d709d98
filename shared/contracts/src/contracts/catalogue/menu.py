"""Menu changes, on the menu topic, keyed by pizza name (or topping name)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from contracts.catalogue.base import CatalogueEvent
from contracts.topics import MENU


class _MenuEvent(CatalogueEvent):
    topic = MENU.name
    aggregate = "pizza"

    name: str = Field(description="Menu name of the pizza; the key.")


class PizzaAdded(_MenuEvent):
    event_type = "com.mariospizzeria.menu.pizza_added.v1"

    base_price: Decimal = Field(description="Medium-size price in EUR.")
    toppings: tuple[str, ...]
    at: datetime


class PizzaChanged(_MenuEvent):
    event_type = "com.mariospizzeria.menu.pizza_changed.v1"

    base_price: Decimal
    toppings: tuple[str, ...]
    at: datetime


class PizzaRetired(_MenuEvent):
    event_type = "com.mariospizzeria.menu.pizza_retired.v1"

    at: datetime


class _ToppingEvent(CatalogueEvent):
    topic = MENU.name
    aggregate = "topping"

    name: str = Field(description="Name of the extra topping; the key.")
    at: datetime


class ToppingAdded(_ToppingEvent):
    """An extra topping customers may add to any pizza (at the menu's topping price)."""

    event_type = "com.mariospizzeria.menu.topping_added.v1"


class ToppingRetired(_ToppingEvent):
    """An extra topping that can no longer be ordered; placed orders keep theirs."""

    event_type = "com.mariospizzeria.menu.topping_retired.v1"
