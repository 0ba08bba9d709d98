"""Orders: placing and tracking (customers), the staff list, and the lifecycle steps."""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.catalogue import Fulfilment
from orders.adapters import metrics, queries
from orders.bootstrap import OrdersService
from orders.domain import customers
from orders.domain.commands import (
    AsCustomer,
    AsGuest,
    CancelOrder,
    ConfirmOrder,
    Deliver,
    Depart,
    LineOrder,
    PickUp,
    PlaceOrder,
)
from orders.domain.customers import CustomerErased, CustomerNotFound
from orders.domain.menu import Size
from orders.domain.model import (
    MAX_EXTRA_TOPPINGS,
    MAX_LINES_PER_ORDER,
    MAX_PIZZAS_PER_ORDER,
    Order,
    OrderStatus,
)
from orders.entrypoints.deps import (
    DriverDep,
    OptionalPrincipalDep,
    OrderFiltersDep,
    OrderId,
    OwnerDep,
    PickUpDep,
    ReaderDep,
    ServiceDep,
    StaffDep,
    client_address,
)
from orders.service_layer.commands import UnknownPizza, UnknownTopping, fingerprint
from orders.service_layer.menu import MAX_NAME_LENGTH, MAX_TOPPING_LENGTH
from service_kit.auth import Principal, Role
from service_kit.http import error_responses
from service_kit.inputs import MultiLine, SingleLine
from service_kit.limits import retry_after_header

router = APIRouter(prefix="/orders", tags=["orders"])


Name = Annotated[str, SingleLine, Field(max_length=200, examples=["Giulia Rossi"])]
Phone = Annotated[
    str,
    Field(
        max_length=32,
        pattern=customers.PHONE_INPUT.pattern,
        description="International format (E.164 once spaces, dashes, dots and brackets are "
        "removed): +, then 7 to 15 digits.",
        examples=["+39 06 1234 5678"],
    ),
]
Email = Annotated[
    str,
    Field(
        max_length=254,
        pattern=customers.EMAIL_INPUT.pattern,
        examples=["giulia@example.com"],
    ),
]
Address = Annotated[str, MultiLine, Field(max_length=500, examples=["Via Roma 1, 00100 Roma"])]
Topping = Annotated[str, SingleLine, Field(max_length=MAX_TOPPING_LENGTH, examples=["olives"])]


class WithContacts(BaseModel):
    """A body with ``phone`` and ``email`` fields (``Phone``, ``Email``): each normalised once
    valid, wherever a phone number or an email address comes in."""

    @field_validator("phone", check_fields=False)
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else customers.normalise_phone(value)

    @field_validator("email", check_fields=False)
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else customers.normalise_email(value)


class CustomerIn(WithContacts):
    """Who the order is for; a phone number or an email address (or both) to reach them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
            ]
        },
    )

    name: Name
    phone: Phone | None = None
    email: Email | None = None
    address: Address | None = None
    # Strict: JSON true or false, not 0, 1 or "yes", as the document says.
    sms_opt_in: bool = Field(default=True, strict=True)
    email_opt_in: bool = Field(default=True, strict=True)

    @model_validator(mode="after")
    def _reachable(self) -> CustomerIn:
        if self.phone is None and self.email is None:
            raise ValueError("give a phone number or an email address, so we can reach you")
        return self


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pizza: Annotated[str, SingleLine, Field(max_length=MAX_NAME_LENGTH, examples=["Margherita"])]
    size: Size = Size.MEDIUM
    quantity: int = Field(default=1, ge=1, le=MAX_PIZZAS_PER_ORDER)
    toppings: list[Topping] = Field(
        default_factory=list,
        max_length=MAX_EXTRA_TOPPINGS,
        description="Extra toppings, each one of the menu's `extra_toppings`.",
        examples=[["olives"]],
    )


class OrderCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer": {
                        "name": "Giulia Rossi",
                        "phone": "+39 06 1234 5678",
                        "address": "Via Roma 1, 00100 Roma",
                    },
                    "lines": [{"pizza": "Margherita", "size": "large", "quantity": 2}],
                    "fulfilment": "delivery",
                }
            ],
            # A guest's delivery (the default) needs the customer's address; a signed-in
            # customer's comes from their profile.
            "anyOf": [
                {"required": ["fulfilment"], "properties": {"fulfilment": {"const": "pickup"}}},
                {
                    "required": ["customer"],
                    "properties": {
                        "customer": {
                            "required": ["address"],
                            "properties": {"address": {"type": "string"}},
                        }
                    },
                },
                {"not": {"required": ["customer"]}},
            ],
        },
    )

    customer: CustomerIn | None = Field(
        default=None,
        description="Who the order is for, when it is placed without signing in: a guest "
        "order, sent to these details and to nobody else. Left out with a customer token: the "
        "customer's stored details are used.",
    )
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES_PER_ORDER)
    fulfilment: Fulfilment = "delivery"

    @model_validator(mode="after")
    def _limits(self) -> OrderCreate:
        if sum(line.quantity for line in self.lines) > MAX_PIZZAS_PER_ORDER:
            raise ValueError(f"an order may have at most {MAX_PIZZAS_PER_ORDER} pizzas")
        if self.fulfilment == "delivery" and self.customer and not self.customer.address:
            raise ValueError("a delivery order needs customer.address")
        return self


class OrderLinePublic(BaseModel):
    pizza: str
    size: str
    quantity: int
    toppings: list[str]
    unit_price: Decimal


class OrderPublic(BaseModel):
    id: str
    customer_id: str | None = Field(
        description="Pseudonymous id of the order's customer (or guest contact): for staff and "
        "for the signed-in customer; null in answers to anyone else (a guest placing an order, "
        "the holder of a tracking token)."
    )
    status: OrderStatus
    fulfilment: Fulfilment
    lines: list[OrderLinePublic]
    total: Decimal
    placed_at: datetime
    updated_at: datetime | None
    cancel_reason: str | None
    driver_id: str | None
    version: int

    @classmethod
    def of(cls, order: Order, *, shows_customer_id: bool) -> OrderPublic:
        return cls(
            id=order.id,
            customer_id=order.customer_id if shows_customer_id else None,
            status=order.status,
            fulfilment=order.fulfilment,
            lines=[OrderLinePublic(**line.model_dump()) for line in order.lines],
            total=order.total,
            placed_at=order.placed_at,
            updated_at=order.updated_at,
            cancel_reason=order.cancel_reason,
            driver_id=order.driver_id,
            version=order.version,
        )


class OrderPlacedPublic(OrderPublic):
    tracking_token: str | None = Field(
        description="Shown once: present it as X-Tracking-Token to read, confirm or cancel the "
        "order. Null when an idempotent retry returned an order placed earlier."
    )


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, MultiLine, Field(max_length=500, examples=["ordered twice by mistake"])]


class OrderPage(BaseModel):
    orders: list[OrderPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")

    @classmethod
    def of(cls, page: list[Order], query: queries.OrderQuery) -> OrderPage:
        """The page as staff and the orders' own customer see it (with the customer id)."""
        return cls(
            orders=[OrderPublic.of(order, shows_customer_id=True) for order in page],
            next_cursor=next_cursor(page, query.limit),
        )


def next_cursor(page: list[Order], limit: int) -> str | None:
    """The cursor after a full page (None after the last one): where the page ended."""
    if len(page) < limit or not page:
        return None
    last = page[-1]
    return base64.urlsafe_b64encode(f"{last.placed_at.isoformat()}|{last.id}".encode()).decode()


IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="Retry-safe placement: the same key and body return the same order "
        "(visible ASCII, e.g. a UUID).",
    ),
]


def _admit(service: OrdersService, request: Request, contacts: list[str]) -> list[str]:
    """429 when this client address, phone or email (or signed-in customer) placed too many
    orders lately: each order sends an SMS and an email, and nobody should be able to do that
    to someone else.

    Returns the contacts charged, to be given back if no new order comes of the request: the
    contact limit counts orders placed, so nobody can use up someone else's with refused
    requests, and a client retrying with its Idempotency-Key is not refused for it. The
    client limit counts every attempt.
    """
    checks = [(service.placements_per_client, "client", client_address(request), "this address")]
    checks += [
        (service.placements_per_contact, "contact", contact, "this phone number or email")
        for contact in contacts
    ]
    charged: list[str] = []
    for limit, kind, key, who in checks:
        wait = limit.take(key)
        if wait is not None:
            _give_back(service, charged)
            metrics.placement_limited(kind)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many orders from {who}; retry in {retry_after_header(wait)} s",
                headers={"Retry-After": retry_after_header(wait)},
            )
        if kind == "contact":
            charged.append(key)
    return charged


def _give_back(service: OrdersService, contacts: list[str]) -> None:
    for contact in contacts:
        service.placements_per_contact.give_back(contact)


def _placer(
    body: OrderCreate, principal: Principal | None
) -> tuple[AsGuest | AsCustomer, list[str]]:
    """Who the order is for, and the keys its contact limit is charged to."""
    if principal is not None and principal.has_any(Role.CUSTOMER):
        if body.customer is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                [
                    {
                        "loc": ["body", "customer"],
                        "msg": "signed in as a customer, the order is for your stored details: "
                        "leave out customer (change them with PATCH /customers/me)",
                        "type": "signed_in",
                    }
                ],
            )
        return AsCustomer(principal.subject), [f"customer:{principal.subject}"]
    if body.customer is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["body", "customer"],
                    "msg": "give the customer's name and a phone number or an email address, "
                    "or sign in as a customer",
                    "type": "missing",
                }
            ],
        )
    contact = customers.ContactDetails(**body.customer.model_dump())
    return AsGuest(contact), [c for c in (contact.phone, contact.email) if c]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderPlacedPublic,
    # The bearer token is optional (`{}`): without one, the order is a guest's.
    openapi_extra={"security": [{}]},
    responses={
        200: {
            "model": OrderPlacedPublic,
            "description": "A retry with the same `Idempotency-Key` and body: the order that "
            "key placed (header `Idempotent-Replayed: true`, `tracking_token` null).",
        },
        **error_responses(
            401,
            403,
            410,
            413,
            429,
            _401="The bearer token presented is not valid (without one, the order is a guest's).",
            _403="A customer token that names no customer.",
            _410="The signed-in customer's personal data was erased.",
            _422="A field is not acceptable, a pizza or extra topping is not on the menu, more "
            "than 50 pizzas, the `Idempotency-Key` was used with another body, a guest order "
            "without `customer`, a signed-in customer's order with one, or a profile without "
            "the name (or, for a delivery, the address) the order needs.",
            examples={
                403: {"detail": "this customer token names no customer"},
                410: {"detail": "the customer's personal data was erased"},
            },
        ),
    },
)
async def place_order(
    body: OrderCreate,
    service: ServiceDep,
    request: Request,
    response: Response,
    principal: OptionalPrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OrderPlacedPublic:
    """Place an order (pending until confirmed). Returns the tracking token once.

    Without a token it is a guest order for the `customer` given, which nothing else reads or
    changes; with a customer token it is for the customer's stored details (no `customer`)."""
    placer, contacts = _placer(body, principal)
    charged = _admit(service, request, contacts)
    signed_in = isinstance(placer, AsCustomer)
    document = body.model_dump(mode="json")
    command = PlaceOrder(
        placer=placer,
        lines=[
            LineOrder(line.pizza, line.size, line.quantity, tuple(line.toppings))
            for line in body.lines
        ],
        fulfilment=body.fulfilment,
        idempotency_key=idempotency_key,
        # A key reused by anyone but whoever placed its order is "another request".
        request_fingerprint=fingerprint(
            {**document, "signed_in_as": principal.subject} if signed_in and principal else document
        ),
    )
    try:
        placed = await service.commands.handle(command)
    except BaseException as error:
        _give_back(service, charged)
        if isinstance(error, UnknownPizza):
            raise _not_on_the_menu(["body", "lines", error.line, "pizza"], error) from error
        if isinstance(error, UnknownTopping):
            location: list[str | int] = ["body", "lines", error.line, "toppings", error.position]
            raise _not_on_the_menu(location, error) from error
        if isinstance(error, CustomerNotFound | CustomerErased):
            raise customer_refused(error, not_found=status.HTTP_403_FORBIDDEN) from error
        raise
    if placed.replayed:
        _give_back(service, charged)
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return OrderPlacedPublic(
        **OrderPublic.of(placed.order, shows_customer_id=signed_in).model_dump(),
        tracking_token=placed.tracking_token,
    )


def customer_refused(error: CustomerNotFound | CustomerErased, *, not_found: int) -> HTTPException:
    """A customer token whose customer was erased (410), or that names none (``not_found``)."""
    if isinstance(error, CustomerErased):
        return HTTPException(status.HTTP_410_GONE, "the customer's personal data was erased")
    return HTTPException(not_found, "this customer token names no customer")


def _not_on_the_menu(location: list[str | int], error: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": location, "msg": str(error), "type": "not_on_the_menu"}],
    )


@router.get("", response_model=OrderPage, responses=error_responses(401, 403))
async def list_orders(service: ServiceDep, _: StaffDep, filters: OrderFiltersDep) -> OrderPage:
    """Staff: orders, newest first, filtered by status and placement time, one page at a time."""
    query = filters.query()
    return OrderPage.of(await queries.list_orders(service.sessions, query), query)


READ_RESPONSES = error_responses(
    401, 403, 404, _401="No credentials, or the tracking token is not this order's."
)
# A refused transition names the order's current status and why (`current_status`, `reason`).
STEP_RESPONSES = error_responses(401, 403, 404, 409)


@router.get("/{order_id}", response_model=OrderPublic, responses=READ_RESPONSES)
async def get_order(order_id: OrderId, service: ServiceDep, who: ReaderDep) -> OrderPublic:
    """One order: for the holder of its tracking token, its signed-in customer, or staff."""
    order = await queries.get_order(service.sessions, order_id)
    return OrderPublic.of(order, shows_customer_id=who.shows_customer_id)


@router.post("/{order_id}/confirm", response_model=OrderPublic, responses=STEP_RESPONSES)
async def confirm_order(order_id: OrderId, service: ServiceDep, who: OwnerDep) -> OrderPublic:
    """Confirm a pending order (its customer or a manager); it goes to the kitchen."""
    by = who.subject if who.kind == "staff" and who.subject else "customer"
    order = await service.commands.handle(ConfirmOrder(order_id, by))
    return OrderPublic.of(order, shows_customer_id=who.shows_customer_id)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderPublic,
    responses={**STEP_RESPONSES, **error_responses(413)},
)
async def cancel_order(
    order_id: OrderId, body: CancelRequest, service: ServiceDep, who: OwnerDep
) -> OrderPublic:
    """Cancel a pending or confirmed order, with a reason (its customer or a manager)."""
    order = await service.commands.handle(CancelOrder(order_id, body.reason))
    return OrderPublic.of(order, shows_customer_id=who.shows_customer_id)


@router.post("/{order_id}/departure", response_model=OrderPublic, responses=STEP_RESPONSES)
async def depart(order_id: OrderId, service: ServiceDep, driver: DriverDep) -> OrderPublic:
    """Driver: leave with a ready delivery order."""
    order = await service.commands.handle(Depart(order_id, driver.subject))
    return OrderPublic.of(order, shows_customer_id=True)


@router.post("/{order_id}/delivery", response_model=OrderPublic, responses=STEP_RESPONSES)
async def deliver(order_id: OrderId, service: ServiceDep, driver: DriverDep) -> OrderPublic:
    """Driver: the order was handed to the customer."""
    order = await service.commands.handle(Deliver(order_id, driver.subject))
    return OrderPublic.of(order, shows_customer_id=True)


@router.post("/{order_id}/pickup", response_model=OrderPublic, responses=STEP_RESPONSES)
async def pick_up(order_id: OrderId, service: ServiceDep, _: PickUpDep) -> OrderPublic:
    """Staff: the customer collected a ready pickup order."""
    order = await service.commands.handle(PickUp(order_id))
    return OrderPublic.of(order, shows_customer_id=True)
