"""The customer ordering API (FastAPI): the app factory and how domain errors map to HTTP."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from orders.adapters.repository import ConcurrentUpdate
from orders.bootstrap import bootstrap
from orders.domain.model import DomainError, InvalidTransition, OrderNotFound
from orders.entrypoints.routes import customers, inbound, menu, orders, sign_in
from orders.settings import OrdersSettings
from service_kit.app import service_app
from service_kit.service import consuming_lifespan


async def _not_found(_: Request, error: OrderNotFound) -> JSONResponse:
    return JSONResponse({"detail": f"no order {error.args[0]!r}"}, status.HTTP_404_NOT_FOUND)


async def _conflict(_: Request, error: InvalidTransition) -> JSONResponse:
    return JSONResponse(
        {"detail": str(error), "current_status": error.current.value, "reason": error.reason},
        status.HTTP_409_CONFLICT,
    )


async def _concurrent(_: Request, error: ConcurrentUpdate) -> JSONResponse:
    return JSONResponse(
        {"detail": "the order changed meanwhile; read it again and retry"},
        status.HTTP_409_CONFLICT,
    )


async def _refused(_: Request, error: DomainError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status.HTTP_422_UNPROCESSABLE_CONTENT)


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    return service_app(
        title="Mario's Pizzeria — Orders API",
        description=(
            "Place and track pizza orders. Every change of an order is committed together with "
            "its CloudEvent (transactional outbox) and published to Kafka."
        ),
        version="1.0.0",
        lifespan=consuming_lifespan(lambda: bootstrap(settings)),
        routers=[orders.router, menu.router, inbound.router, sign_in.router, customers.router],
        error_answers={
            OrderNotFound: _not_found,
            InvalidTransition: _conflict,
            ConcurrentUpdate: _concurrent,
            DomainError: _refused,
        },
    )
