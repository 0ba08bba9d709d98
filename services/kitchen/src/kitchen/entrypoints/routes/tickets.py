"""Tickets: reading them (public) and the cooks' steps (chef or manager)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kitchen.domain.tickets import TicketStatus
from kitchen.entrypoints.deps import CookDep, ServiceDep
from kitchen.entrypoints.schemas import TicketOut
from kitchen.service_layer import cooks

router = APIRouter(prefix="/tickets", tags=["tickets"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No ticket for that order."}}
COOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "The token has neither the chef nor the manager role."},
    **NOT_FOUND,
    409: {
        "description": "The ticket's status does not allow it (`current_status`, `reason`), or "
        "the kitchen is at capacity (`detail` is `kitchen at capacity`)."
    },
}


@router.get("", response_model=list[TicketOut])
async def list_tickets(
    service: ServiceDep,
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[TicketOut]:
    """Tickets in queue order (oldest confirmation first), optionally of some statuses."""
    found = await cooks.list_tickets(status or [], limit, service.sessions)
    return [TicketOut.of(ticket) for ticket in found]


@router.get("/{order_id}", response_model=TicketOut, responses=NOT_FOUND)
async def get_ticket(order_id: str, service: ServiceDep) -> TicketOut:
    """The ticket of one order."""
    return TicketOut.of(await cooks.get_ticket(order_id, service.sessions))


@router.post("/{order_id}/start", response_model=TicketOut, responses=COOK_RESPONSES)
async def start_cooking(order_id: str, service: ServiceDep, cook: CookDep) -> TicketOut:
    """Chef or manager: start cooking a queued ticket (the caller is recorded as its cook)."""
    return TicketOut.of(
        await cooks.start_cooking(order_id, cook.subject, service.sessions, service.deps)
    )


@router.post("/{order_id}/ready", response_model=TicketOut, responses=COOK_RESPONSES)
async def mark_ready(order_id: str, service: ServiceDep, _: CookDep) -> TicketOut:
    """Chef or manager: the pizzas of a cooking ticket are done."""
    return TicketOut.of(await cooks.mark_ready(order_id, service.sessions, service.deps))
