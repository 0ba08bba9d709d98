"""Tickets: reading them and the cooks' steps (chef or manager, like everything in the kitchen)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from kitchen.adapters import queries
from kitchen.domain.commands import MarkReady, StartCooking
from kitchen.domain.tickets import TicketStatus
from kitchen.entrypoints.deps import CookDep, OrderId, ServiceDep, cook_responses
from kitchen.entrypoints.schemas import TicketOut

router = APIRouter(prefix="/tickets", tags=["tickets"])

NO_TICKET = "No ticket for that order (not confirmed yet, or unknown)."
STEP_RESPONSES = cook_responses(
    404,
    409,
    _404=NO_TICKET,
    _409="The ticket's status does not allow it (`current_status`, `reason`), or the kitchen is "
    "at capacity (`detail` is `kitchen at capacity`, with `capacity` and `cooking`).",
    examples={
        404: {"detail": "no ticket for order '01a2173f-2a59-7101-9f24-859a52435820'"},
        409: {"detail": "kitchen at capacity", "capacity": 3, "cooking": 3},
    },
)


@router.get("", response_model=list[TicketOut], responses=cook_responses())
async def list_tickets(
    service: ServiceDep,
    _: CookDep,
    status: Annotated[
        list[TicketStatus] | None,
        Query(
            max_length=len(TicketStatus),
            description="Only tickets in these statuses.",
            examples=[["queued", "cooking"]],
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many tickets.")] = 200,
) -> list[TicketOut]:
    """Chef or manager: tickets in queue order (oldest confirmation first)."""
    found = await queries.list_tickets(service.sessions, status or [], limit)
    return [TicketOut.of(ticket) for ticket in found]


@router.get(
    "/{order_id}",
    response_model=TicketOut,
    responses=cook_responses(
        404,
        _404=NO_TICKET,
        examples={404: {"detail": "no ticket for order '01a2173f-2a59-7101-9f24-859a52435820'"}},
    ),
)
async def get_ticket(order_id: OrderId, service: ServiceDep, _: CookDep) -> TicketOut:
    """Chef or manager: the ticket of one order, in any status."""
    return TicketOut.of(await queries.get_ticket(service.sessions, order_id))


@router.post("/{order_id}/start", response_model=TicketOut, responses=STEP_RESPONSES)
async def start_cooking(order_id: OrderId, service: ServiceDep, cook: CookDep) -> TicketOut:
    """Chef or manager: start cooking a queued ticket (the caller is recorded as its cook)."""
    return TicketOut.of(await service.commands.handle(StartCooking(order_id, cook.subject)))


@router.post("/{order_id}/ready", response_model=TicketOut, responses=STEP_RESPONSES)
async def mark_ready(order_id: OrderId, service: ServiceDep, _: CookDep) -> TicketOut:
    """Chef or manager: the pizzas of a cooking ticket are done."""
    return TicketOut.of(await service.commands.handle(MarkReady(order_id)))
