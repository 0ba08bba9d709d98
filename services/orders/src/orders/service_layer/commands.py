"""What the orders service is asked to do: every command's one handler, listed in
``COMMAND_HANDLERS`` at the end. Orders and the CloudEvents other systems send are handled here;
the menu's, customers' and sign-in's handlers live in their modules and are listed here too.

Each handler runs in a unit of work of its own (``OrdersDependencies``, made by ``bootstrap``
for each command); the events it produces reach the outbox in the same transaction. Metrics move
after commit, so a rolled-back change is never counted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert

from contracts.catalogue import PaymentSucceeded, new_tracking_token, tracking_token_sha256
from eventing.events import EventData
from eventing.ids import uuid7
from orders.adapters import metrics
from orders.adapters.orm import idempotency_keys_table, inbound_events_table
from orders.domain.commands import (
    AddExtraTopping,
    AddPizza,
    AsCustomer,
    CancelOrder,
    ChangePizza,
    ChangeProfile,
    ConfirmOrder,
    Deliver,
    Depart,
    EraseCustomer,
    PickUp,
    PlacedOrder,
    PlaceOrder,
    ProveContact,
    Receipt,
    ReceiveInboundEvent,
    RetireExtraTopping,
    RetirePizza,
    SendSignInCode,
    SignIn,
)
from orders.domain.model import DomainError, LineRequest, Order, OrderNotFound, OrderStatus
from orders.service_layer import customers, menu, sign_in
from orders.service_layer.unit_of_work import OrdersDependencies, UnitOfWork
from service_kit.commands import Command
from service_kit.handlers import CommandHandler

log = logging.getLogger("orders.inbound")


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


class IncompleteProfile(DomainError):
    """The signed-in customer's stored details lack what the order needs (a name, an address)."""


def fingerprint(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


async def place_order(command: PlaceOrder, deps: OrdersDependencies) -> PlacedOrder:
    """Place an order; with an idempotency key, a retry returns the order the key made."""
    async with deps.uow as uow:
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
            customer = await customers.signed_in_customer(uow, command.placer.customer_id)
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
        pizzas = await menu.pizzas_on_the_menu(uow.session, (line.pizza for line in command.lines))
        extras = await menu.extra_toppings_on_the_menu(
            uow.session, (topping for line in command.lines for topping in line.toppings)
        )
        requests = []
        for index, line in enumerate(command.lines):
            if line.pizza not in pizzas:
                raise UnknownPizza(index, line.pizza)
            for position, topping in enumerate(line.toppings):
                if topping not in extras:
                    raise UnknownTopping(index, position, topping)
            requests.append(
                LineRequest(pizzas[line.pizza], line.size, line.quantity, line.toppings)
            )
        if isinstance(command.placer, AsCustomer):
            customer_id = command.placer.customer_id
        else:
            customer_id = await customers.record_guest(uow, command.placer.contact)
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


async def confirm_order(command: ConfirmOrder, deps: OrdersDependencies) -> Order:
    return await _change(
        deps.uow, command.order_id, lambda o: o.confirm(by=command.by, now=datetime.now(UTC))
    )


async def cancel_order(command: CancelOrder, deps: OrdersDependencies) -> Order:
    return await _change(
        deps.uow,
        command.order_id,
        lambda o: o.cancel(reason=command.reason, now=datetime.now(UTC)),
    )


async def depart(command: Depart, deps: OrdersDependencies) -> Order:
    return await _change(
        deps.uow,
        command.order_id,
        lambda o: o.depart(driver_id=command.driver_id, now=datetime.now(UTC)),
    )


async def deliver(command: Deliver, deps: OrdersDependencies) -> Order:
    return await _change(
        deps.uow,
        command.order_id,
        lambda o: o.deliver(driver_id=command.driver_id, now=datetime.now(UTC)),
    )


async def pick_up(command: PickUp, deps: OrdersDependencies) -> Order:
    return await _change(deps.uow, command.order_id, lambda o: o.pick_up(now=datetime.now(UTC)))


async def _change(uow: UnitOfWork, order_id: str, change: Callable[[Order], None]) -> Order:
    """Load the order locked, apply one domain transition, commit it with its event."""
    async with uow:
        order = await uow.orders.get(order_id, for_update=True)
        if order is None:
            raise OrderNotFound(order_id)
        change(order)
        await uow.commit()
    metrics.order_transitioned(order.status)
    return order


# ------------------------------------------------------------------------------ inbound events
# CloudEvents other systems send us (a payment provider's "payment succeeded"), received once.
#
# An event is identified by its (source, id), as CloudEvents prescribes. Receiving one inserts it
# into ``inbound_events`` in the same transaction that applies its effect, so a redelivery finds
# the row and changes nothing, and a failure before commit leaves neither the row nor the effect:
# the sender's retry is then processed afresh.
#
# Outcomes that are not the sender's fault (an unknown or cancelled order, a payment for an order
# confirmed already) are stored with the event and answered as accepted: the event was durably
# received and retrying it would not help. Only the types in ``INBOUND_TYPES`` are accepted; our
# own outbound types (order.placed...) are never taken from outside.

INBOUND_TYPES: dict[str, type[EventData]] = {PaymentSucceeded.event_type: PaymentSucceeded}
APPLIED = "applied"


class UnknownEventType(LookupError):
    """The event's type is not one we accept from outside."""

    def __init__(self, event_type: str) -> None:
        accepted = ", ".join(sorted(INBOUND_TYPES))
        super().__init__(f"event type {event_type!r} is not accepted here; accepted: {accepted}")
        self.event_type = event_type


def validate(event: ReceiveInboundEvent) -> EventData:
    """The event's typed data. Raises ``UnknownEventType`` or pydantic's ``ValidationError``."""
    model = INBOUND_TYPES.get(event.type)
    if model is None:
        raise UnknownEventType(event.type)
    return model.model_validate(event.data)


async def receive_inbound_event(event: ReceiveInboundEvent, deps: OrdersDependencies) -> Receipt:
    """Record the event and apply its effect in one transaction, unless it was received before.

    Validates first (see ``validate``), so invalid events are neither stored nor applied.
    """
    payload = validate(event)
    async with deps.uow as uow:
        inserted = await uow.session.execute(
            insert(inbound_events_table)
            .values(
                source=event.source,
                id=event.id,
                type=event.type,
                subject=event.subject,
                data=event.data,
                outcome="received",
            )
            # A concurrent delivery of the same event waits here for the first to commit.
            .on_conflict_do_nothing(
                index_elements=[inbound_events_table.c.source, inbound_events_table.c.id]
            )
            .returning(inbound_events_table.c.id)
        )
        if inserted.scalar_one_or_none() is None:
            stored = await uow.session.execute(
                select(inbound_events_table.c.outcome).where(
                    inbound_events_table.c.source == event.source,
                    inbound_events_table.c.id == event.id,
                )
            )
            return Receipt(duplicate=True, outcome=stored.scalar_one())
        outcome = await _apply(payload, uow)
        await uow.session.execute(
            update(inbound_events_table)
            .where(
                inbound_events_table.c.source == event.source,
                inbound_events_table.c.id == event.id,
            )
            .values(outcome=outcome)
        )
        await uow.commit()
    if outcome == APPLIED and isinstance(payload, PaymentSucceeded):
        metrics.order_transitioned(OrderStatus.CONFIRMED)  # the payment confirmed its order
    if outcome != APPLIED:
        log.warning("inbound event %s from %s not applied: %s", event.id, event.source, outcome)
    return Receipt(duplicate=False, outcome=outcome)


async def _apply(payload: EventData, uow: UnitOfWork) -> str:
    if isinstance(payload, PaymentSucceeded):
        return await _payment_succeeded(payload, uow)
    raise AssertionError(f"no effect defined for {payload.event_type}")  # pragma: no cover


async def _payment_succeeded(payment: PaymentSucceeded, uow: UnitOfWork) -> str:
    """Confirm the pending order the payment is for, if the amount is its total."""
    order = await uow.orders.get(payment.order_id, for_update=True)
    if order is None:
        return f"ignored: order {payment.order_id!r} is unknown"
    if order.status is OrderStatus.CANCELLED:
        return "ignored: order is cancelled"
    if order.status is not OrderStatus.PENDING:
        return f"ignored: order is already {order.status.value}"
    if payment.amount != order.total:
        return (
            f"rejected: amount {payment.amount} {payment.currency} does not match "
            f"order total {order.total} EUR"
        )
    order.confirm(by="payment", now=datetime.now(UTC))
    return APPLIED


COMMAND_HANDLERS: dict[type[Command[Any]], CommandHandler[OrdersDependencies]] = {
    PlaceOrder: place_order,
    ConfirmOrder: confirm_order,
    CancelOrder: cancel_order,
    Depart: depart,
    Deliver: deliver,
    PickUp: pick_up,
    ReceiveInboundEvent: receive_inbound_event,
    AddPizza: menu.add_pizza,
    ChangePizza: menu.change_pizza,
    RetirePizza: menu.retire_pizza,
    AddExtraTopping: menu.add_extra_topping,
    RetireExtraTopping: menu.retire_extra_topping,
    ChangeProfile: customers.change_profile,
    EraseCustomer: customers.erase_customer,
    SendSignInCode: sign_in.send_sign_in_code,
    SignIn: sign_in.sign_in,
    ProveContact: sign_in.prove_contact,
}
