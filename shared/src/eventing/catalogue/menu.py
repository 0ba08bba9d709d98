"""Menu changes, on the menu topic, keyed by pizza name."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from eventing.catalogue.base import EventData
from eventing.topics import MENU


class _MenuEvent(EventData):
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
