"""The one pricing rule: base × size factor, rounded half up to the cent, + 1.50 per topping."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.domain.menu import SEED_MENU, Size, unit_price

BY_NAME = {pizza.name: pizza for pizza in SEED_MENU}


def test_the_seed_menu_has_the_six_pizzas_at_their_prices() -> None:
    assert {pizza.name: pizza.base_price for pizza in SEED_MENU} == {
        "Margherita": Decimal("12.99"),
        "Pepperoni": Decimal("14.99"),
        "Vegetarian": Decimal("13.99"),
        "Hawaiian": Decimal("14.99"),
        "BBQ Chicken": Decimal("15.99"),
        "Meat Lovers": Decimal("16.99"),
    }


@pytest.mark.parametrize(
    ("pizza", "size", "toppings", "expected"),
    [
        ("Margherita", Size.MEDIUM, 0, "12.99"),
        ("Margherita", Size.SMALL, 0, "10.39"),  # 10.392
        ("Margherita", Size.LARGE, 0, "16.24"),  # 16.2375, half up
        ("Pepperoni", Size.SMALL, 0, "11.99"),  # 11.992
        ("Pepperoni", Size.LARGE, 2, "21.74"),  # 18.7375 → 18.74, + 3.00
        ("Meat Lovers", Size.LARGE, 1, "22.74"),  # 21.2375 → 21.24, + 1.50
        ("BBQ Chicken", Size.MEDIUM, 3, "20.49"),
    ],
)
def test_unit_price(pizza: str, size: Size, toppings: int, expected: str) -> None:
    price = unit_price(BY_NAME[pizza], size, toppings)
    assert price == Decimal(expected)
    assert price.as_tuple().exponent == -2  # always whole cents, never a float
