"""The menu: anyone may read it; managers add, change and retire pizzas.

Each change is published as a menu event. Orders copy their prices at placement, so changing
or retiring a pizza never changes an order that was already placed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orders.domain.menu import TOPPING_PRICE, Size, unit_price
from orders.entrypoints.deps import ManagerDep, ServiceDep
from orders.service_layer import menu
from orders.service_layer.menu import (
    MAX_NAME_LENGTH,
    MAX_PRICE,
    MAX_TOPPING_LENGTH,
    MAX_TOPPINGS,
    MenuConflict,
    MenuEntry,
    PizzaNotFound,
)

router = APIRouter(prefix="/menu", tags=["menu"])

PizzaName = Annotated[
    str,
    Path(min_length=1, max_length=MAX_NAME_LENGTH, description="Menu name of the pizza."),
]
Price = Annotated[
    Decimal,
    Field(
        gt=0,
        le=MAX_PRICE,
        max_digits=8,
        decimal_places=2,
        description="Medium-size price in EUR, at most 2 decimals.",
        examples=["12.99"],
    ),
]
Toppings = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_TOPPING_LENGTH)]],
    Field(max_length=MAX_TOPPINGS, examples=[["tomato", "mozzarella", "basil"]]),
]


def _distinct(toppings: list[str]) -> list[str]:
    if any(not topping.strip() for topping in toppings):
        raise ValueError("a topping must not be blank")
    if len(set(toppings)) != len(toppings):
        raise ValueError("a topping is listed twice")
    return toppings


class PizzaCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=r"^[^/\s](?:[^/]*[^/\s])?$",
        description="Menu name: the pizza's key; no '/', no leading or trailing space.",
        examples=["Quattro Formaggi"],
    )
    base_price: Price
    toppings: Toppings

    _toppings = field_validator("toppings")(_distinct)


class PizzaUpdate(BaseModel):
    """The pizza's new base price and toppings (a full replacement; the name stays)."""

    model_config = ConfigDict(extra="forbid")

    base_price: Price
    toppings: Toppings

    _toppings = field_validator("toppings")(_distinct)


class MenuPizza(BaseModel):
    name: str
    base_price: Decimal = Field(description="Medium-size price in EUR.")
    toppings: list[str]
    prices: dict[Size, Decimal] = Field(
        description="Price of one pizza of each size without extra toppings, in EUR."
    )
    version: int = Field(description="Bumped by every change of the pizza.")

    @classmethod
    def of(cls, entry: MenuEntry) -> MenuPizza:
        return cls(
            name=entry.name,
            base_price=entry.base_price,
            toppings=list(entry.toppings),
            prices={size: unit_price(entry.pizza, size, 0) for size in Size},
            version=entry.version,
        )


class MenuPublic(BaseModel):
    currency: Literal["EUR"] = "EUR"
    topping_price: Decimal = Field(description="Added to a pizza's price per extra topping.")
    pizzas: list[MenuPizza]


def _refused(error: PizzaNotFound | MenuConflict) -> HTTPException:
    if isinstance(error, PizzaNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, f"no pizza {error.args[0]!r} on the menu")
    return HTTPException(status.HTTP_409_CONFLICT, error.reason)


@router.get("", response_model=MenuPublic)
async def read_menu(service: ServiceDep) -> MenuPublic:
    """The pizzas that can be ordered now, with the price of each size (public)."""
    entries = await menu.active_entries(service.unit_of_work())
    return MenuPublic(
        topping_price=TOPPING_PRICE, pizzas=[MenuPizza.of(entry) for entry in entries]
    )


@router.post(
    "/pizzas",
    status_code=status.HTTP_201_CREATED,
    response_model=MenuPizza,
    responses={409: {"description": "A pizza of that name is on the menu already."}},
)
async def add_pizza(body: PizzaCreate, service: ServiceDep, _: ManagerDep) -> MenuPizza:
    """Manager: put a new pizza on the menu (a retired name comes back). Publishes PizzaAdded."""
    try:
        entry = await menu.add_pizza(
            body.name, body.base_price, body.toppings, service.unit_of_work()
        )
    except MenuConflict as error:
        raise _refused(error) from error
    return MenuPizza.of(entry)


@router.put(
    "/pizzas/{name}",
    response_model=MenuPizza,
    responses={
        404: {"description": "No pizza of that name."},
        409: {"description": "The pizza is retired, or changed meanwhile."},
    },
)
async def change_pizza(
    name: PizzaName, body: PizzaUpdate, service: ServiceDep, _: ManagerDep
) -> MenuPizza:
    """Manager: change a pizza's base price and toppings. Publishes PizzaChanged.

    Orders already placed keep their prices.
    """
    try:
        entry = await menu.change_pizza(
            name, body.base_price, body.toppings, service.unit_of_work()
        )
    except (PizzaNotFound, MenuConflict) as error:
        raise _refused(error) from error
    return MenuPizza.of(entry)


@router.delete(
    "/pizzas/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        404: {"description": "No pizza of that name."},
        409: {"description": "The pizza is retired already, or changed meanwhile."},
    },
)
async def retire_pizza(name: PizzaName, service: ServiceDep, _: ManagerDep) -> Response:
    """Manager: retire a pizza; it can no longer be ordered. Publishes PizzaRetired."""
    try:
        await menu.retire_pizza(name, service.unit_of_work())
    except (PizzaNotFound, MenuConflict) as error:
        raise _refused(error) from error
    return Response(status_code=status.HTTP_204_NO_CONTENT)
