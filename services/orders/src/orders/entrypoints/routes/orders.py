"""Orders: placing and tracking (customers), the staff list, and the lifecycle steps."""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eventing.catalogue import Fulfilment
from orders.adapters.repository import OrderQuery
from orders.domain import customers
from orders.domain.menu import Size
from orders.domain.model import MAX_PIZZAS_PER_ORDER, Order, OrderStatus
from orders.entrypoints.deps import (
    DriverDep,
    HandOverDep,
    OwnerDep,
    ReaderDep,
    ServiceDep,
    StaffDep,
)
from orders.service_layer import handlers

router = APIRouter(prefix="/orders", tags=["orders"])


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["Giulia Rossi"])
    phone: str | None = Field(default=None, max_length=32, examples=["+39 06 1234 5678"])
    email: str | None = Field(default=None, max_length=254, examples=["giulia@example.com"])
    address: str | None = Field(default=None, max_length=500, examples=["Via Roma 1, 00100 Roma"])
    sms_opt_in: bool = True
    email_opt_in: bool = True

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else customers.normalise_phone(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else customers.normalise_email(value)

    @model_validator(mode="after")
    def _reachable(self) -> CustomerIn:
        if self.phone is None and self.email is None:
            raise ValueError("give a phone number or an email address, so we can reach you")
        return self


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pizza: str = Field(min_length=1, max_length=100, examples=["Margherita"])
    size: Size = Size.MEDIUM
    quantity: int = Field(default=1, ge=1, le=MAX_PIZZAS_PER_ORDER)
    toppings: list[str] = Field(default_factory=list, max_length=10, examples=[["olives"]])


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
            ]
        },
    )

    customer: CustomerIn
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_PIZZAS_PER_ORDER)
    fulfilment: Fulfilment = "delivery"

    @model_validator(mode="after")
    def _limits(self) -> OrderCreate:
        if sum(line.quantity for line in self.lines) > MAX_PIZZAS_PER_ORDER:
            raise ValueError(f"an order may have at most {MAX_PIZZAS_PER_ORDER} pizzas")
        if self.fulfilment == "delivery" and not self.customer.address:
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
    customer_id: str = Field(description="Pseudonymous customer id.")
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
    def of(cls, order: Order) -> OrderPublic:
        return cls(
            id=order.id,
            customer_id=order.customer_id,
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

    reason: str = Field(min_length=1, max_length=500, examples=["ordered twice by mistake"])


class OrderPage(BaseModel):
    orders: list[OrderPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


def _cursor(order: Order) -> str:
    return base64.urlsafe_b64encode(f"{order.placed_at.isoformat()}|{order.id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        placed_at, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(placed_at), order_id
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "malformed cursor") from error


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderPlacedPublic)
async def place_order(
    body: OrderCreate,
    service: ServiceDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Retry-safe placement: the same key and body return the same order.",
        ),
    ] = None,
) -> OrderPlacedPublic:
    """Place an order (pending until confirmed). Returns the tracking token once."""
    command = handlers.PlaceOrder(
        customer=customers.ContactDetails(**body.customer.model_dump()),
        lines=[
            handlers.LineOrder(line.pizza, line.size, line.quantity, tuple(line.toppings))
            for line in body.lines
        ],
        fulfilment=body.fulfilment,
        idempotency_key=idempotency_key,
        request_fingerprint=handlers.fingerprint(body.model_dump(mode="json")),
    )
    try:
        placed = await handlers.place_order(command, service.unit_of_work())
    except handlers.UnknownPizza as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["body", "lines", error.line, "pizza"],
                    "msg": str(error),
                    "type": "unknown_pizza",
                }
            ],
        ) from error
    if placed.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return OrderPlacedPublic(
        **OrderPublic.of(placed.order).model_dump(), tracking_token=placed.tracking_token
    )


@router.get("", response_model=OrderPage)
async def list_orders(
    service: ServiceDep,
    _: StaffDep,
    status_filter: Annotated[list[OrderStatus] | None, Query(alias="status")] = None,
    placed_from: Annotated[datetime | None, Query(description="Inclusive, ISO 8601.")] = None,
    placed_until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> OrderPage:
    """Staff: orders, newest first, filtered by status and placement time, one page at a time."""
    for moment in (placed_from, placed_until):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "times need a UTC offset")
    query = OrderQuery(
        statuses=tuple(status_filter or ()),
        placed_from=placed_from,
        placed_until=placed_until,
        after=_parse_cursor(cursor) if cursor else None,
        limit=limit,
    )
    found = await handlers.list_orders(query, service.unit_of_work())
    return OrderPage(
        orders=[OrderPublic.of(order) for order in found],
        next_cursor=_cursor(found[-1]) if len(found) == limit else None,
    )


@router.get("/{order_id}", response_model=OrderPublic)
async def get_order(order_id: str, service: ServiceDep, _: ReaderDep) -> OrderPublic:
    """One order: for the customer (tracking token) or staff."""
    return OrderPublic.of(await handlers.get_order(order_id, service.unit_of_work()))


@router.post("/{order_id}/confirm", response_model=OrderPublic)
async def confirm_order(order_id: str, service: ServiceDep, who: OwnerDep) -> OrderPublic:
    """Confirm a pending order (customer or manager); it goes to the kitchen."""
    by = "customer" if who == "customer" else who.removeprefix("staff:")
    return OrderPublic.of(await handlers.confirm_order(order_id, by, service.unit_of_work()))


@router.post("/{order_id}/cancel", response_model=OrderPublic)
async def cancel_order(
    order_id: str, body: CancelRequest, service: ServiceDep, _: OwnerDep
) -> OrderPublic:
    """Cancel a pending or confirmed order, with a reason (customer or manager)."""
    return OrderPublic.of(
        await handlers.cancel_order(order_id, body.reason, service.unit_of_work())
    )


@router.post("/{order_id}/departure", response_model=OrderPublic)
async def send_out(order_id: str, service: ServiceDep, driver: DriverDep) -> OrderPublic:
    """Driver: leave with a ready delivery order."""
    return OrderPublic.of(await handlers.send_out(order_id, driver.subject, service.unit_of_work()))


@router.post("/{order_id}/delivery", response_model=OrderPublic)
async def deliver(order_id: str, service: ServiceDep, driver: DriverDep) -> OrderPublic:
    """Driver: the order was handed to the customer."""
    return OrderPublic.of(await handlers.deliver(order_id, driver.subject, service.unit_of_work()))


@router.post("/{order_id}/pickup", response_model=OrderPublic)
async def hand_over(order_id: str, service: ServiceDep, _: HandOverDep) -> OrderPublic:
    """Staff: the customer collected a ready pickup order."""
    return OrderPublic.of(await handlers.hand_over(order_id, service.unit_of_work()))
