"""The menu and the one pricing rule every part of the system uses.

Price of one pizza = the pizza's base price (its medium price) × the size factor, rounded to the
cent (half up), + 1.50 per extra topping. Sizes: small × 0.80, medium × 1.00, large × 1.25.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class Size(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


SIZE_FACTORS: dict[Size, Decimal] = {
    Size.SMALL: Decimal("0.80"),
    Size.MEDIUM: Decimal("1.00"),
    Size.LARGE: Decimal("1.25"),
}
TOPPING_PRICE = Decimal("1.50")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Pizza:
    name: str
    base_price: Decimal
    toppings: tuple[str, ...]


@dataclass(frozen=True)
class MenuEntry:
    """A pizza as the menu stores it: with its version, and when it was retired (if it was)."""

    name: str
    base_price: Decimal
    toppings: tuple[str, ...]
    version: int
    retired_at: datetime | None

    @property
    def pizza(self) -> Pizza:
        return Pizza(self.name, self.base_price, self.toppings)


SEED_MENU: tuple[Pizza, ...] = (
    Pizza("Margherita", Decimal("12.99"), ("tomato", "mozzarella", "basil")),
    Pizza("Pepperoni", Decimal("14.99"), ("tomato", "mozzarella", "pepperoni")),
    Pizza(
        "Vegetarian", Decimal("13.99"), ("tomato", "mozzarella", "peppers", "onions", "mushrooms")
    ),
    Pizza("Hawaiian", Decimal("14.99"), ("tomato", "mozzarella", "ham", "pineapple")),
    Pizza("BBQ Chicken", Decimal("15.99"), ("bbq sauce", "mozzarella", "chicken", "red onion")),
    Pizza(
        "Meat Lovers", Decimal("16.99"), ("tomato", "mozzarella", "pepperoni", "sausage", "bacon")
    ),
)


# What a customer may add to any pizza, each at TOPPING_PRICE; managers change the list.
SEED_EXTRA_TOPPINGS: tuple[str, ...] = (
    "anchovies",
    "bacon",
    "basil",
    "chicken",
    "chili",
    "extra mozzarella",
    "feta",
    "garlic",
    "ham",
    "jalapeños",
    "mushrooms",
    "olives",
    "onions",
    "pepperoni",
    "peppers",
    "pineapple",
    "rocket",
    "sausage",
)


def unit_price(pizza: Pizza, size: Size, extra_toppings: int) -> Decimal:
    sized = (pizza.base_price * SIZE_FACTORS[size]).quantize(CENT, rounding=ROUND_HALF_UP)
    return sized + TOPPING_PRICE * extra_toppings
