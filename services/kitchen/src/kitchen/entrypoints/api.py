"""The kitchen's HTTP API (FastAPI): the app factory and how domain errors map to HTTP."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from kitchen.domain.estimates import KitchenAtCapacity
from kitchen.domain.tickets import InvalidTransition, TicketNotFound
from kitchen.entrypoints import display
from kitchen.entrypoints.lifespan import kitchen_lifespan
from kitchen.entrypoints.routes import queue, tickets
from kitchen.settings import KitchenSettings
from service_kit.app import service_app


async def _not_found(_: Request, error: TicketNotFound) -> JSONResponse:
    return JSONResponse(
        {"detail": f"no ticket for order {error.args[0]!r}"}, status.HTTP_404_NOT_FOUND
    )


async def _conflict(_: Request, error: InvalidTransition) -> JSONResponse:
    return JSONResponse(
        {"detail": str(error), "current_status": error.current.value, "reason": error.reason},
        status.HTTP_409_CONFLICT,
    )


async def _at_capacity(_: Request, error: KitchenAtCapacity) -> JSONResponse:
    return JSONResponse(
        {"detail": "kitchen at capacity", "capacity": error.capacity, "cooking": error.cooking},
        status.HTTP_409_CONFLICT,
    )


def create_app(settings: KitchenSettings | None = None) -> FastAPI:
    return service_app(
        title="Mario's Pizzeria — Kitchen",
        description=(
            "Tickets of confirmed orders, the queue with estimated ready times, and the cooks' "
            "steps. Every change is committed with its kitchen event (transactional outbox)."
        ),
        version="1.0.0",
        lifespan=kitchen_lifespan(settings),
        routers=[queue.router, tickets.router, display.router],
        error_answers={
            TicketNotFound: _not_found,
            InvalidTransition: _conflict,
            KitchenAtCapacity: _at_capacity,
        },
    )
