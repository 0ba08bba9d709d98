"""Application handlers of the orders service: small async functions over a unit of work."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from contracts.catalogue import Fulfilment, new_tracking_token, tracking_token_sha256
from eventing.ids import uuid7
from orders import metrics
from orders.adapters.orm import idempotency_keys_table
from orders.adapters.repository import OrderQuery
from orders.domain.customers import ContactDetails
from orders.domain.menu import Size
from orders.domain.model import DomainError, LineRequest, Order
from orders.service_layer.customers import record_guest, signed_in_customer
from orders.service_layer.menu import extra_toppings_on_the_menu, pizzas_on_the_menu
from orders.service_layer.unit_of_work import UnitOfWork


class OrderNotFound(LookupError):
    pass


class IdempotencyConflict(DomainError):
    """The idempotency key was used before with a different request."""


class UnknownPizza(DomainError):
    """A line names a pizza that is not on the menu."""

    def __init__(self, line: int, pizza: str) -> None:
        super().__init__(f"{pizza!r} is not on the menu")
        self.line = line
        self.pizza = pizza


class UnknownTopping(DomainError):
    """A line asks for an extra topping the menu does not offer."""

    def __init__(self, line: int, position: int, topping: str) -> None:
        super().__init__(f"{topping!r} is not an extra topping on the menu")
        self.line = line
        self.position = position
        self.topping = topping


@dataclass(frozen=True)
class LineOrder:
    """A line as the customer asked for it: the pizza by its menu name."""

    pizza: str
    size: Size
    quantity: int
    toppings: tuple[str, ...] = ()


class IncompleteProfile(DomainError):
    """The signed-in customer's stored details lack what the order needs (a name, an address)."""


@dataclass(frozen=True)
class AsGuest:
    """An order placed without signing in: its contact details are its own snapshot."""

    contact: ContactDetails


@dataclass(frozen=True)
class AsCustomer:
    """An order placed with a customer token: for the customer's stored details."""

    customer_id: str


@dataclass(frozen=True)
class PlaceOrder:
    placer: AsGuest | AsCustomer
    lines: list[LineOrder]
    fulfilment: Fulfilment
    idempotency_key: str | None = None
    request_fingerprint: str = ""


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    tracking_token: str | None  # None when an idempotent retry returned an existing order
    replayed: bool


def fingerprint(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


async def place_order(command: PlaceOrder, uow: UnitOfWork) -> PlacedOrder:
    """Place an order; with an idempotency key, a retry returns the order the key made."""
    async with uow:
        if command.idempotency_key is not None:
            # Serialise requests with the same key: 20 concurrent retries make one order.
            await uow.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": command.idempotency_key},
            )
            previous = (
                (
                    await uow.session.execute(
                        select(idempotency_keys_table).where(
                            idempotency_keys_table.c.key == command.idempotency_key
                        )
                    )
                )
                .mappings()
                .first()
            )
            if previous is not None:
                if previous["request_sha256"] != command.request_fingerprint:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was already used with a different request"
                    )
                order = await uow.orders.get(previous["order_id"])
                assert order is not None
                return PlacedOrder(order, tracking_token=None, replayed=True)
        if isinstance(command.placer, AsCustomer):
            customer = await signed_in_customer(uow, command.placer.customer_id)
            if not customer.name:
                raise IncompleteProfile(
                    "your profile has no name yet: give one with PATCH /customers/me"
                )
            if command.fulfilment == "delivery" and not customer.address:
                raise IncompleteProfile(
                    "a delivery order needs an address: add one with PATCH /customers/me"
                )
        elif command.fulfilment == "delivery" and not command.placer.contact.address:
            raise DomainError("a delivery order needs the customer's address")
        menu = await pizzas_on_the_menu(uow.session, (line.pizza for line in command.lines))
        extras = await extra_toppings_on_the_menu(
            uow.session, (topping for line in command.lines for topping in line.toppings)
        )
        requests = []
        for index, line in enumerate(command.lines):
            if line.pizza not in menu:
                raise UnknownPizza(index, line.pizza)
            for position, topping in enumerate(line.toppings):
                if topping not in extras:
                    raise UnknownTopping(index, position, topping)
            requests.append(LineRequest(menu[line.pizza], line.size, line.quantity, line.toppings))
        if isinstance(command.placer, AsCustomer):
            customer_id = command.placer.customer_id
        else:
            customer_id = await record_guest(uow, command.placer.contact)
        token = new_tracking_token()
        token_sha256 = tracking_token_sha256(token)
        # The event carries the hash too, so notifications can admit the token's holder.
        order = Order.place(
            order_id=str(uuid7()),
            customer_id=customer_id,
            requests=requests,
            now=datetime.now(UTC),
            fulfilment=command.fulfilment,
            tracking_token_sha256=token_sha256,
        )
        await uow.orders.add(order, tracking_token_sha256=token_sha256)
        if command.idempotency_key is not None:
            await uow.session.execute(
                insert(idempotency_keys_table).values(
                    key=command.idempotency_key,
                    request_sha256=command.request_fingerprint,
                    order_id=order.id,
                )
            )
        await uow.commit()
    metrics.order_placed(order.total)
    return PlacedOrder(order, tracking_token=token, replayed=False)


async def get_order(order_id: str, uow: UnitOfWork) -> Order:
    async with uow:
        order = await uow.orders.get(order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


async def customer_of(order_id: str, uow: UnitOfWork) -> str | None:
    """The order's customer (or guest) id, None if there is no such order."""
    async with uow:
        order = await uow.orders.get(order_id)
    return None if order is None else order.customer_id


async def tracking_token_matches(order_id: str, token: str, uow: UnitOfWork) -> bool:
    async with uow:
        stored = await uow.orders.tracking_token_sha256(order_id)
    return stored is not None and secrets.compare_digest(stored, tracking_token_sha256(token))


async def list_orders(query: OrderQuery, uow: UnitOfWork) -> list[Order]:
    async with uow:
        return await uow.orders.list(query)


async def change_order(order_id: str, uow: UnitOfWork, change: Callable[[Order], None]) -> Order:
    """Load the order locked, apply one domain transition, commit it with its event."""
    async with uow:
        order = await uow.orders.get(order_id, for_update=True)
        if order is None:
            raise OrderNotFound(order_id)
        change(order)
        await uow.commit()
    metrics.order_transitioned(order.status)
    return order


async def confirm_order(order_id: str, by: str, uow: UnitOfWork) -> Order:
    return await change_order(order_id, uow, lambda o: o.confirm(by=by, now=datetime.now(UTC)))


async def cancel_order(order_id: str, reason: str, uow: UnitOfWork) -> Order:
    return await change_order(
        order_id, uow, lambda o: o.cancel(reason=reason, now=datetime.now(UTC))
    )


async def depart(order_id: str, driver_id: str, uow: UnitOfWork) -> Order:
    return await change_order(
        order_id, uow, lambda o: o.depart(driver_id=driver_id, now=datetime.now(UTC))
    )


async def deliver(order_id: str, driver_id: str, uow: UnitOfWork) -> Order:
    return await change_order(
        order_id, uow, lambda o: o.deliver(driver_id=driver_id, now=datetime.now(UTC))
    )


async def pick_up(order_id: str, uow: UnitOfWork) -> Order:
    return await change_order(order_id, uow, lambda o: o.pick_up(now=datetime.now(UTC)))
