"""What the orders service is asked to do; each command has one handler, listed in
``service_layer.commands.COMMAND_HANDLERS``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from contracts.catalogue import Fulfilment
from orders.domain.customers import ContactDetails, StoredCustomer
from orders.domain.menu import MenuEntry, Size
from orders.domain.model import Order
from orders.domain.sign_in import Contact
from service_kit.commands import Command

# ------------------------------------------------------------------------------ orders


@dataclass(frozen=True)
class LineOrder:
    """A line as the customer asked for it: the pizza by its menu name."""

    pizza: str
    size: Size
    quantity: int
    toppings: tuple[str, ...] = ()


@dataclass(frozen=True)
class AsGuest:
    """An order placed without signing in: its contact details are its own snapshot."""

    contact: ContactDetails


@dataclass(frozen=True)
class AsCustomer:
    """An order placed with a customer token: for the customer's stored details."""

    customer_id: str


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    tracking_token: str | None  # None when an idempotent retry returned an existing order
    replayed: bool


@dataclass(frozen=True)
class PlaceOrder(Command[PlacedOrder]):
    """Place an order (``POST /orders``); with an idempotency key, a retry gets the same one."""

    placer: AsGuest | AsCustomer
    lines: list[LineOrder]
    fulfilment: Fulfilment
    idempotency_key: str | None = None
    request_fingerprint: str = ""


@dataclass(frozen=True)
class ConfirmOrder(Command[Order]):
    """Confirm a pending order (``POST /orders/{id}/confirm``); ``by`` is who confirmed it."""

    order_id: str
    by: str


@dataclass(frozen=True)
class CancelOrder(Command[Order]):
    """Cancel a pending or confirmed order (``POST /orders/{id}/cancel``)."""

    order_id: str
    reason: str


@dataclass(frozen=True)
class Depart(Command[Order]):
    """The driver leaves with a ready delivery order (``POST /orders/{id}/departure``)."""

    order_id: str
    driver_id: str


@dataclass(frozen=True)
class Deliver(Command[Order]):
    """The driver handed the order to the customer (``POST /orders/{id}/delivery``)."""

    order_id: str
    driver_id: str


@dataclass(frozen=True)
class PickUp(Command[Order]):
    """The customer collected a ready pickup order (``POST /orders/{id}/pickup``)."""

    order_id: str


# ------------------------------------------------------------------------------ inbound events


@dataclass(frozen=True)
class Receipt:
    duplicate: bool
    outcome: str


@dataclass(frozen=True)
class ReceiveInboundEvent(Command[Receipt]):
    """Receive a CloudEvent another system sent (``POST /cloudevents``), once per (source, id):
    its identity, type and data (a JSON object, as sent)."""

    source: str
    id: str
    type: str
    data: dict[str, Any]
    subject: str | None = None


# ------------------------------------------------------------------------------ menu


@dataclass(frozen=True)
class AddPizza(Command[MenuEntry]):
    """Put a pizza on the menu, or bring a retired one back (``POST /menu/pizzas``)."""

    name: str
    base_price: Decimal
    toppings: tuple[str, ...]


@dataclass(frozen=True)
class ChangePizza(Command[MenuEntry]):
    """Replace a pizza's base price and toppings (``PUT /menu/pizzas/{name}``)."""

    name: str
    base_price: Decimal
    toppings: tuple[str, ...]


@dataclass(frozen=True)
class RetirePizza(Command[MenuEntry]):
    """Take a pizza off the menu (``DELETE /menu/pizzas/{name}``)."""

    name: str


@dataclass(frozen=True)
class AddExtraTopping(Command[bool]):
    """Offer an extra topping (``PUT /menu/toppings/{name}``); False if it was offered already."""

    name: str


@dataclass(frozen=True)
class RetireExtraTopping(Command[None]):
    """Stop offering an extra topping (``DELETE /menu/toppings/{name}``)."""

    name: str


# ------------------------------------------------------------------------------ customers


@dataclass(frozen=True)
class ChangeProfile(Command[StoredCustomer]):
    """Change a customer's or a guest's details (``PATCH /customers/me``, ``/customers/{id}``);
    whoever issues it decided the caller may."""

    customer_id: str
    changes: Mapping[str, object]


@dataclass(frozen=True)
class EraseCustomer(Command[StoredCustomer]):
    """Erase a customer's or a guest's personal data (``DELETE /customers/me``, ``/{id}``)."""

    customer_id: str


# ------------------------------------------------------------------------------ sign-in


@dataclass(frozen=True)
class SendSignInCode(Command[None]):
    """Issue a new code for the contact and send it (``POST /customers/sign-in/code``)."""

    contact: Contact


@dataclass(frozen=True)
class SignIn(Command[tuple[StoredCustomer, bool]]):
    """Trade the code sent to the contact for its customer, made if new
    (``POST /customers/sign-in/token``); the result says whether they are new."""

    contact: Contact
    code: str
    name: str | None = None


@dataclass(frozen=True)
class ProveContact(Command[None]):
    """Use up the code sent to the contact: a new phone or email for ``PATCH /customers/me``."""

    contact: Contact
    code: str
