"""The menu as stored: what can be ordered now, and how managers change it.

Prices are copied into each order line at placement, so a later menu change never changes an
order already placed. Every change bumps the pizza's version (checked optimistically: the update
applies only to the version that was read) and is published on the menu topic, keyed by the
pizza's name, in the same transaction (``uow.emit``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import PizzaAdded, PizzaChanged, PizzaRetired, ToppingAdded, ToppingRetired
from orders.adapters.orm import extra_toppings_table, menu_table
from orders.adapters.repository import menu_entry_from_row
from orders.domain.commands import (
    AddExtraTopping,
    AddPizza,
    ChangePizza,
    RetireExtraTopping,
    RetirePizza,
)
from orders.domain.menu import CENT, MenuEntry, Pizza
from orders.domain.model import DomainError
from orders.service_layer.unit_of_work import OrdersDependencies, UnitOfWork

MAX_NAME_LENGTH = 100
MAX_TOPPINGS = 20
MAX_TOPPING_LENGTH = 50
# menu.base_price is NUMERIC(10, 2): eight digits before the point.
MAX_PRICE = Decimal("999999.99")


class PizzaNotFound(LookupError):
    """No pizza of that name was ever on the menu."""


class ToppingNotFound(LookupError):
    """No extra topping of that name was ever on the menu."""


class MenuConflict(Exception):
    """The change does not fit the pizza's current state; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidMenuEntry(DomainError):
    """A name, price or topping list the menu does not accept."""


async def pizzas_on_the_menu(session: AsyncSession, names: Iterable[str]) -> dict[str, Pizza]:
    """The pizzas of these names that are on the menu now, read in the caller's transaction
    (an order is priced from the menu as it is when the order commits)."""
    rows = (
        await session.execute(
            select(menu_table).where(
                menu_table.c.retired_at.is_(None), menu_table.c.name.in_(set(names))
            )
        )
    ).mappings()
    return {
        row["name"]: Pizza(row["name"], Decimal(row["base_price"]), tuple(row["toppings"]))
        for row in rows
    }


async def add_pizza(command: AddPizza, deps: OrdersDependencies) -> MenuEntry:
    """Put a new pizza on the menu (version 1), or bring a retired one back (next version).

    Raises ``MenuConflict`` when a pizza of that name is on the menu already.
    """
    name = _name(command.name)
    base_price, topping_list = _price(command.base_price), _toppings(command.toppings)
    now = datetime.now(UTC)
    async with deps.uow as uow:
        inserted = await uow.session.execute(
            insert(menu_table)
            .values(
                name=name,
                base_price=base_price,
                toppings=list(topping_list),
                version=1,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[menu_table.c.name])
            .returning(menu_table.c.version)
        )
        version = inserted.scalar_one_or_none()
        if version is None:
            current = await _load(uow, name)
            if current is None or current.retired_at is None:
                raise MenuConflict(f"{name!r} is already on the menu; change it instead")
            version = await _update(
                uow,
                current,
                base_price=base_price,
                toppings=list(topping_list),
                retired_at=None,
                updated_at=now,
            )
        uow.emit(
            PizzaAdded(name=name, base_price=base_price, toppings=topping_list, at=now),
            aggregate_id=name,
            version=version,
        )
        await uow.commit()
    return MenuEntry(name, base_price, topping_list, version, None)


async def change_pizza(command: ChangePizza, deps: OrdersDependencies) -> MenuEntry:
    """Replace the base price and toppings of a pizza on the menu.

    Orders already placed keep the prices they were placed with. Changing nothing is a no-op
    (no new version, no event). Raises ``PizzaNotFound`` or ``MenuConflict`` (retired, or
    changed concurrently).
    """
    name = command.name
    base_price, topping_list = _price(command.base_price), _toppings(command.toppings)
    now = datetime.now(UTC)
    async with deps.uow as uow:
        current = await _active(uow, name, "change")
        if current.base_price == base_price and current.toppings == topping_list:
            return current
        version = await _update(
            uow, current, base_price=base_price, toppings=list(topping_list), updated_at=now
        )
        uow.emit(
            PizzaChanged(name=name, base_price=base_price, toppings=topping_list, at=now),
            aggregate_id=name,
            version=version,
        )
        await uow.commit()
    return MenuEntry(name, base_price, topping_list, version, None)


async def retire_pizza(command: RetirePizza, deps: OrdersDependencies) -> MenuEntry:
    """Take a pizza off the menu: it can no longer be ordered; placed orders are unaffected.

    Raises ``PizzaNotFound`` or ``MenuConflict`` (already retired, or changed concurrently).
    """
    name = command.name
    now = datetime.now(UTC)
    async with deps.uow as uow:
        current = await _active(uow, name, "retire")
        version = await _update(uow, current, retired_at=now, updated_at=now)
        uow.emit(PizzaRetired(name=name, at=now), aggregate_id=name, version=version)
        await uow.commit()
    return MenuEntry(name, current.base_price, current.toppings, version, now)


# ------------------------------------------------------------------------------ extra toppings


async def extra_toppings_on_the_menu(session: AsyncSession, names: Iterable[str]) -> set[str]:
    """Which of these extra toppings can be ordered now (read in the caller's transaction)."""
    wanted = set(names)
    if not wanted:
        return set()
    rows = await session.execute(
        select(extra_toppings_table.c.name).where(
            extra_toppings_table.c.retired_at.is_(None), extra_toppings_table.c.name.in_(wanted)
        )
    )
    return {row[0] for row in rows}


async def add_extra_topping(command: AddExtraTopping, deps: OrdersDependencies) -> bool:
    """Offer an extra topping (a retired one comes back). False if it is offered already."""
    name = command.name
    now = datetime.now(UTC)
    async with deps.uow as uow:
        version = (
            await uow.session.execute(
                insert(extra_toppings_table)
                .values(name=name, version=1, updated_at=now)
                .on_conflict_do_update(
                    index_elements=[extra_toppings_table.c.name],
                    set_={
                        "retired_at": None,
                        "version": extra_toppings_table.c.version + 1,
                        "updated_at": now,
                    },
                    where=extra_toppings_table.c.retired_at.is_not(None),
                )
                .returning(extra_toppings_table.c.version)
            )
        ).scalar_one_or_none()
        if version is None:
            return False
        uow.emit(ToppingAdded(name=name, at=now), aggregate_id=name, version=version)
        await uow.commit()
    return True


async def retire_extra_topping(command: RetireExtraTopping, deps: OrdersDependencies) -> None:
    """Stop offering an extra topping; orders placed with it keep it.

    Raises ``ToppingNotFound`` or ``MenuConflict`` (retired already).
    """
    name = command.name
    now = datetime.now(UTC)
    async with deps.uow as uow:
        row = (
            (
                await uow.session.execute(
                    select(extra_toppings_table)
                    .where(extra_toppings_table.c.name == name)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ToppingNotFound(name)
        if row["retired_at"] is not None:
            raise MenuConflict(f"{name!r} was retired at {row['retired_at'].isoformat()}")
        version = row["version"] + 1
        await uow.session.execute(
            update(extra_toppings_table)
            .where(extra_toppings_table.c.name == name)
            .values(retired_at=now, version=version, updated_at=now)
        )
        uow.emit(ToppingRetired(name=name, at=now), aggregate_id=name, version=version)
        await uow.commit()


# ------------------------------------------------------------------------------ internals


async def _load(uow: UnitOfWork, name: str) -> MenuEntry | None:
    row = (
        (await uow.session.execute(select(menu_table).where(menu_table.c.name == name)))
        .mappings()
        .first()
    )
    return None if row is None else menu_entry_from_row(row)


async def _active(uow: UnitOfWork, name: str, action: str) -> MenuEntry:
    current = await _load(uow, name)
    if current is None:
        raise PizzaNotFound(name)
    if current.retired_at is not None:
        raise MenuConflict(
            f"cannot {action} {name!r}: it was retired at {current.retired_at.isoformat()}"
        )
    return current


async def _update(uow: UnitOfWork, current: MenuEntry, **values: Any) -> int:
    """Write ``values`` and the next version, only if nobody changed the pizza since it was read."""
    version = current.version + 1
    result = await uow.session.execute(
        update(menu_table)
        .where(menu_table.c.name == current.name, menu_table.c.version == current.version)
        .values(**values, version=version)
        .returning(menu_table.c.version)
    )
    if result.scalar_one_or_none() is None:
        raise MenuConflict(f"{current.name!r} changed meanwhile; read the menu again and retry")
    return version


def _name(name: str) -> str:
    if not name or name != name.strip():
        raise InvalidMenuEntry("a pizza name must not be empty or start or end with a space")
    if len(name) > MAX_NAME_LENGTH or "/" in name:
        raise InvalidMenuEntry(f"a pizza name has at most {MAX_NAME_LENGTH} characters, no '/'")
    return name


def _price(value: Decimal) -> Decimal:
    try:
        price = Decimal(value)
        exact = price.is_finite() and price.quantize(CENT) == price
    except InvalidOperation:
        exact = False
    if not exact or not Decimal(0) < price <= MAX_PRICE:
        raise InvalidMenuEntry(
            f"a price must be more than 0 and at most {MAX_PRICE}, with at most 2 decimals; "
            f"got {value}"
        )
    return price.quantize(CENT)


def _toppings(toppings: Iterable[str]) -> tuple[str, ...]:
    result = tuple(toppings)
    if len(result) > MAX_TOPPINGS:
        raise InvalidMenuEntry(f"a pizza has at most {MAX_TOPPINGS} toppings")
    for topping in result:
        if not topping.strip() or len(topping) > MAX_TOPPING_LENGTH:
            raise InvalidMenuEntry(
                f"a topping is a non-blank name of at most {MAX_TOPPING_LENGTH} characters"
            )
    if len(set(result)) != len(result):
        raise InvalidMenuEntry("a topping is listed twice")
    return result
