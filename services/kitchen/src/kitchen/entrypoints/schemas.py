"""What the kitchen API returns: the contract the kitchen display is built against."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainSerializer

from kitchen.adapters.queries import Board
from kitchen.domain.tickets import Ticket, TicketStatus


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ISO 8601 in UTC, e.g. 2026-11-26T19:42:00Z.
UtcDatetime = Annotated[datetime, PlainSerializer(_utc, return_type=str, when_used="json")]


class LineOut(BaseModel):
    pizza: str
    size: str
    quantity: int
    toppings: list[str]


class _TicketFields(BaseModel):
    order_id: str
    pizzas: int
    lines: list[LineOut]
    fulfilment: str = Field(description="delivery or pickup.")
    queued_at: UtcDatetime = Field(description="When the order was confirmed.")
    started_at: UtcDatetime | None
    ready_at: UtcDatetime | None
    estimated_ready_at: UtcDatetime | None = Field(
        description="Queued: from the queue simulation. Cooking and ready: started_at plus the "
        "cook time. Whole minutes, rounded up."
    )
    cook: str | None = Field(description="Staff id of the cook who started it.")

    @staticmethod
    def _common(ticket: Ticket) -> dict[str, object]:
        return {
            "order_id": ticket.order_id,
            "pizzas": ticket.pizzas,
            "lines": [
                LineOut(
                    pizza=line.pizza,
                    size=line.size,
                    quantity=line.quantity,
                    toppings=list(line.toppings),
                )
                for line in ticket.lines
            ],
            "fulfilment": ticket.fulfilment,
            "queued_at": ticket.queued_at,
            "started_at": ticket.started_at,
            "ready_at": ticket.ready_at,
            "estimated_ready_at": ticket.estimated_ready_at,
            "cook": ticket.cook,
        }


_COOKING_TICKET: dict[str, JsonValue] = {
    "order_id": "01a2173f-2a59-7101-9f24-859a52435820",
    "pizzas": 2,
    "lines": [{"pizza": "Margherita", "size": "large", "quantity": 2, "toppings": ["olives"]}],
    "fulfilment": "delivery",
    "queued_at": "2026-11-26T19:30:00Z",
    "started_at": "2026-11-26T19:32:00Z",
    "ready_at": None,
    "estimated_ready_at": "2026-11-26T19:42:00Z",
    "cook": "chef-mario",
    "status": "cooking",
}


class QueueTicket(_TicketFields):
    status: Literal["queued", "cooking", "ready"]

    @classmethod
    def of(cls, ticket: Ticket) -> QueueTicket:
        return cls.model_validate({**cls._common(ticket), "status": ticket.status.value})


class QueueOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"capacity": 3, "cooking": 1, "tickets": [_COOKING_TICKET]}]
        }
    )

    capacity: int = Field(description="Orders the kitchen cooks at once, at most.")
    cooking: int = Field(description="Orders cooking now.")
    tickets: list[QueueTicket] = Field(
        description="Queued tickets in queue order, then cooking ones, then the ones ready in "
        "the last 30 minutes."
    )

    @classmethod
    def of(cls, board: Board) -> QueueOut:
        return cls(
            capacity=board.capacity,
            cooking=board.cooking,
            tickets=[QueueTicket.of(ticket) for ticket in board.tickets],
        )


class TicketOut(_TicketFields):
    """One ticket, in any status, with what happened to it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_COOKING_TICKET,
                    "lateness_seconds": None,
                    "cancelled_at": None,
                    "cancel_reason": None,
                    "pizzas_wasted": 0,
                }
            ]
        }
    )

    status: TicketStatus
    lateness_seconds: int | None = Field(
        description="Ready tickets: ready_at minus estimated_ready_at (positive: late)."
    )
    cancelled_at: UtcDatetime | None = Field(description="When the order was cancelled, if it was.")
    cancel_reason: str | None
    pizzas_wasted: int = Field(description="Pizzas thrown away (cancelled while cooking).")

    @classmethod
    def of(cls, ticket: Ticket) -> TicketOut:
        return cls.model_validate(
            {
                **cls._common(ticket),
                "status": ticket.status,
                "lateness_seconds": ticket.lateness_seconds,
                "cancelled_at": ticket.cancelled_at,
                "cancel_reason": ticket.cancel_reason,
                "pizzas_wasted": ticket.pizzas_wasted,
            }
        )
