"""The menu: anyone may read it; managers add, change and retire pizzas.

Each change is published as a menu event. Orders copy their prices at placement, so changing
or retiring a pizza never changes an order that was already placed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from orders.adapters import queries
from orders.domain.commands import (
    AddExtraTopping,
    AddPizza,
    ChangePizza,
    RetireExtraTopping,
    RetirePizza,
)
from orders.domain.menu import TOPPING_PRICE, MenuEntry, Size, unit_price
from orders.entrypoints.deps import ManagerDep, ServiceDep
from orders.service_layer.menu import (
    MAX_NAME_LENGTH,
    MAX_PRICE,
    MAX_TOPPING_LENGTH,
    MAX_TOPPINGS,
    MenuConflict,
    PizzaNotFound,
    ToppingNotFound,
)
from service_kit.http import error_responses
from service_kit.inputs import Label

router = APIRouter(prefix="/menu", tags=["menu"])

# A label (one line, no space at either end) without '/': the name is a path segment.
_EDGE = r"[^\s/\x00-\x1f\x7f-\x9f]"
PIZZA_NAME_PATTERN = rf"^{_EDGE}(?:[^/\x00-\x1f\x7f-\x9f]*{_EDGE})?$"
PizzaName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=PIZZA_NAME_PATTERN,
        description="Menu name of the pizza.",
    ),
]
ToppingName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_TOPPING_LENGTH,
        pattern=PIZZA_NAME_PATTERN,
        description="Name of the extra topping; one line, no '/', no space at either end.",
    ),
]
# Money is a decimal string (as every answer writes it), never a JSON number: a binary float
# cannot hold 0.10 exactly. More than 0, at most 999999.99 (the column), at most 2 decimals.
_PRICE = re.compile(r"^(?:0\.(?:[1-9][0-9]?|0[1-9])|[1-9][0-9]{0,5}(?:\.[0-9]{1,2})?)$")


def _price_text(value: object) -> object:
    if not isinstance(value, str) or not _PRICE.fullmatch(value):
        raise ValueError(
            f"a price is a decimal string of more than 0 and at most {MAX_PRICE}, with at most "
            '2 decimals, e.g. "12.99"'
        )
    return value


Price = Annotated[
    Decimal,
    BeforeValidator(_price_text),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _PRICE.pattern,
            "description": "Medium-size price in EUR: a decimal string, at most 2 decimals.",
            "examples": ["12.99"],
        }
    ),
]
Topping = Annotated[str, Label, Field(max_length=MAX_TOPPING_LENGTH)]
Toppings = Annotated[
    list[Topping],
    Field(
        max_length=MAX_TOPPINGS,
        json_schema_extra={"uniqueItems": True},
        examples=[["tomato", "mozzarella", "basil"]],
    ),
]


def _distinct(toppings: list[str]) -> list[str]:
    if len(set(toppings)) != len(toppings):
        raise ValueError("a topping is listed twice")
    return toppings


class PizzaCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=PIZZA_NAME_PATTERN,
        description="Menu name: the pizza's key; one line, no '/', no space at either end.",
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
    extra_toppings: list[str] = Field(
        description="What a customer may add to any pizza (`lines[].toppings` of an order), "
        "each at `topping_price`.",
        examples=[["mushrooms", "olives"]],
    )


class ExtraTopping(BaseModel):
    name: str
    added: bool = Field(description="False when it was on the menu already (nothing changed).")


def _refused(error: PizzaNotFound | ToppingNotFound | MenuConflict) -> HTTPException:
    if isinstance(error, PizzaNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, f"no pizza {error.args[0]!r} on the menu")
    if isinstance(error, ToppingNotFound):
        return HTTPException(
            status.HTTP_404_NOT_FOUND, f"no extra topping {error.args[0]!r} on the menu"
        )
    return HTTPException(status.HTTP_409_CONFLICT, error.reason)


# What a refused menu change answers (the generic 409 example is an order's).
_RETIRED = {409: {"detail": "cannot change 'Hawaiian': it was retired at 2026-11-26T09:45:45Z"}}


@router.get("", response_model=MenuPublic)
async def read_menu(service: ServiceDep) -> MenuPublic:
    """What can be ordered now: the pizzas with the price of each size, and the extra toppings
    (public)."""
    entries = await queries.active_pizzas(service.sessions)
    return MenuPublic(
        topping_price=TOPPING_PRICE,
        pizzas=[MenuPizza.of(entry) for entry in entries],
        extra_toppings=await queries.active_extra_toppings(service.sessions),
    )


@router.post(
    "/pizzas",
    status_code=status.HTTP_201_CREATED,
    response_model=MenuPizza,
    responses=error_responses(
        401,
        403,
        409,
        413,
        _409="A pizza of that name is on the menu already.",
        examples={409: {"detail": "'Margherita' is already on the menu; change it instead"}},
    ),
)
async def add_pizza(body: PizzaCreate, service: ServiceDep, _: ManagerDep) -> MenuPizza:
    """Manager: put a new pizza on the menu (a retired name comes back). Publishes PizzaAdded."""
    try:
        entry = await service.commands.handle(
            AddPizza(body.name, body.base_price, tuple(body.toppings))
        )
    except MenuConflict as error:
        raise _refused(error) from error
    return MenuPizza.of(entry)


@router.put(
    "/pizzas/{name}",
    response_model=MenuPizza,
    responses=error_responses(
        401,
        403,
        404,
        409,
        413,
        _404="No pizza of that name.",
        _409="The pizza is retired, or changed meanwhile.",
        examples=_RETIRED,
    ),
)
async def change_pizza(
    name: PizzaName, body: PizzaUpdate, service: ServiceDep, _: ManagerDep
) -> MenuPizza:
    """Manager: change a pizza's base price and toppings. Publishes PizzaChanged.

    Orders already placed keep their prices.
    """
    try:
        entry = await service.commands.handle(
            ChangePizza(name, body.base_price, tuple(body.toppings))
        )
    except (PizzaNotFound, MenuConflict) as error:
        raise _refused(error) from error
    return MenuPizza.of(entry)


@router.delete(
    "/pizzas/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(
        401,
        403,
        404,
        409,
        _404="No pizza of that name.",
        _409="The pizza is retired already, or changed meanwhile.",
        examples=_RETIRED,
    ),
)
async def retire_pizza(name: PizzaName, service: ServiceDep, _: ManagerDep) -> Response:
    """Manager: retire a pizza; it can no longer be ordered. Publishes PizzaRetired."""
    try:
        await service.commands.handle(RetirePizza(name))
    except (PizzaNotFound, MenuConflict) as error:
        raise _refused(error) from error
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/toppings/{name}",
    response_model=ExtraTopping,
    responses={
        201: {"model": ExtraTopping, "description": "Added (or brought back): on the menu now."},
        **error_responses(401, 403),
    },
)
async def add_extra_topping(
    name: ToppingName, service: ServiceDep, response: Response, _: ManagerDep
) -> ExtraTopping:
    """Manager: offer an extra topping (201), or confirm it is offered (200). Publishes
    ToppingAdded when it changes the menu."""
    added = await service.commands.handle(AddExtraTopping(name))
    if added:
        response.status_code = status.HTTP_201_CREATED
    return ExtraTopping(name=name, added=added)


@router.delete(
    "/toppings/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(
        401,
        403,
        404,
        409,
        _404="No extra topping of that name.",
        _409="The topping is retired already.",
        examples={409: {"detail": "'olives' was retired at 2026-11-26T09:45:45Z"}},
    ),
)
async def retire_extra_topping(name: ToppingName, service: ServiceDep, _: ManagerDep) -> Response:
    """Manager: stop offering an extra topping; placed orders keep theirs. Publishes
    ToppingRetired."""
    try:
        await service.commands.handle(RetireExtraTopping(name))
    except (ToppingNotFound, MenuConflict) as error:
        raise _refused(error) from error
    return Response(status_code=status.HTTP_204_NO_CONTENT)
