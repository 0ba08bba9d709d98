"""The customer ordering API (FastAPI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from eventing.http import database_check, operations_router
from orders.bootstrap import OrdersContainer, bootstrap
from orders.domain.menu import Size
from orders.domain.model import DomainError, LineRequest, Order
from orders.service_layer import handlers
from orders.settings import OrdersSettings


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pizza: str = Field(examples=["Margherita"])
    size: Size = Field(default=Size.MEDIUM)
    quantity: int = Field(default=1, ge=1, le=50)
    toppings: list[str] = Field(default_factory=list, max_length=10)


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=64, examples=["cust-42"])
    lines: list[OrderLineCreate] = Field(min_length=1, max_length=50)


class OrderLinePublic(BaseModel):
    pizza: str
    size: str
    quantity: int
    toppings: list[str]
    unit_price: Decimal


class OrderPublic(BaseModel):
    id: str
    customer_id: str
    status: str
    lines: list[OrderLinePublic]
    total: Decimal
    placed_at: datetime
    version: int

    @classmethod
    def of(cls, order: Order) -> OrderPublic:
        return cls(
            id=order.id,
            customer_id=order.customer_id,
            status=order.status.value,
            lines=[OrderLinePublic(**line.model_dump()) for line in order.lines],
            total=order.total,
            placed_at=order.placed_at,
            version=order.version,
        )


def _container(request: Request) -> OrdersContainer:
    container: OrdersContainer = request.app.state.container
    return container


Container = Annotated[OrdersContainer, Depends(_container)]


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = bootstrap(settings)
        app.state.container = container
        app.include_router(operations_router({"database": database_check(container.engine)}))
        try:
            yield
        finally:
            await container.close()

    app = FastAPI(
        title="Mario's Pizzeria — Orders API",
        description="Place and track pizza orders. Every change is published as a CloudEvent.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.post(
        "/orders", status_code=status.HTTP_201_CREATED, response_model=OrderPublic, tags=["orders"]
    )
    async def place_order(body: OrderCreate, container: Container) -> OrderPublic:
        """Place an order; it starts as pending."""
        requests = []
        for line in body.lines:
            pizza = container.menu.get(line.pizza)
            if pizza is None:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown pizza {line.pizza!r}"
                )
            requests.append(LineRequest(pizza, line.size, line.quantity, tuple(line.toppings)))
        try:
            order = await handlers.place_order(
                handlers.PlaceOrder(customer_id=body.customer_id, lines=requests),
                container.unit_of_work(),
            )
        except DomainError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
        return OrderPublic.of(order)

    @app.get("/orders/{order_id}", response_model=OrderPublic, tags=["orders"])
    async def get_order(order_id: str, container: Container) -> OrderPublic:
        """One order and its current status."""
        order = await handlers.get_order(order_id, container.unit_of_work())
        if order is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id!r}")
        return OrderPublic.of(order)

    return app
