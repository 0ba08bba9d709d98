"""Kitchen tickets: what the kitchen has to cook. Standard library only.

    (order confirmed) ──▶ queued ──start──▶ cooking ──ready──▶ ready
                            │                  │                 │
              (order cancelled)        (order cancelled)   (order cancelled)
                            ▼                  ▼                 ▼
                        withdrawn            wasted         stays ready; the
                                        (pizzas thrown     cancellation is noted
                                              away)

A refused step raises ``InvalidTransition`` naming the current status and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kitchen.domain.estimates import KitchenModel


class TicketStatus(StrEnum):
    QUEUED = "queued"
    COOKING = "cooking"
    READY = "ready"
    WITHDRAWN = "withdrawn"  # cancelled before cooking started
    WASTED = "wasted"  # cancelled while cooking: the pizzas are thrown away


class CancelOutcome(StrEnum):
    """What a cancellation of the order did to its ticket."""

    WITHDRAWN = "withdrawn"
    WASTED = "wasted"
    ALREADY_READY = "already_ready"  # too late: the pizzas are done; the ticket stays ready
    ALREADY_CANCELLED = "already_cancelled"


class TicketNotFound(LookupError):
    """No ticket for that order (not confirmed yet, or unknown)."""


class InvalidTransition(Exception):
    """The ticket's status does not allow the step; ``reason`` says why."""

    def __init__(self, order_id: str, current: TicketStatus, reason: str) -> None:
        super().__init__(f"ticket {order_id} is {current.value}: {reason}")
        self.current = current
        self.reason = reason


@dataclass(frozen=True)
class TicketLine:
    pizza: str
    size: str
    quantity: int
    toppings: tuple[str, ...] = ()


@dataclass
class Ticket:
    order_id: str
    lines: tuple[TicketLine, ...]
    fulfilment: str
    status: TicketStatus
    queued_at: datetime
    started_at: datetime | None = None
    ready_at: datetime | None = None
    cook: str | None = None
    estimated_ready_at: datetime | None = None
    lateness_seconds: int | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    pizzas_wasted: int = 0

    @property
    def pizzas(self) -> int:
        return sum(line.quantity for line in self.lines)

    @classmethod
    def queue(
        cls, order_id: str, lines: tuple[TicketLine, ...], fulfilment: str, at: datetime
    ) -> Ticket:
        return cls(order_id, lines, fulfilment, TicketStatus.QUEUED, queued_at=at)

    def start_cooking(self, *, cook: str, at: datetime, model: KitchenModel, cooking: int) -> None:
        """A cook starts the ticket while ``cooking`` others cook; fixes its estimate."""
        if self.status is not TicketStatus.QUEUED:
            raise InvalidTransition(self.order_id, self.status, self._why_not("start"))
        model.check_room(cooking)
        self.status = TicketStatus.COOKING
        self.cook = cook
        self.started_at = at
        self.estimated_ready_at = model.ready_estimate(at, self.pizzas)

    def mark_ready(self, *, at: datetime) -> None:
        """The pizzas are done; lateness is measured against the estimate (positive: late)."""
        if self.status is not TicketStatus.COOKING:
            raise InvalidTransition(self.order_id, self.status, self._why_not("ready"))
        self.status = TicketStatus.READY
        self.ready_at = at
        if self.estimated_ready_at is not None:
            self.lateness_seconds = round((at - self.estimated_ready_at).total_seconds())

    def cancel(self, *, at: datetime, reason: str) -> CancelOutcome:
        """The order was cancelled. Never refused: the kitchen has to live with it."""
        if self.status in (TicketStatus.WITHDRAWN, TicketStatus.WASTED):
            return CancelOutcome.ALREADY_CANCELLED
        self.cancelled_at = at
        self.cancel_reason = reason
        if self.status is TicketStatus.READY:
            return CancelOutcome.ALREADY_READY
        if self.status is TicketStatus.COOKING:
            self.status = TicketStatus.WASTED
            self.pizzas_wasted = self.pizzas
            return CancelOutcome.WASTED
        self.status = TicketStatus.WITHDRAWN
        self.estimated_ready_at = None
        return CancelOutcome.WITHDRAWN

    def _why_not(self, step: str) -> str:
        match self.status:
            case TicketStatus.QUEUED:
                return "cooking has not started yet"
            case TicketStatus.COOKING:
                return f"already cooking since {_clock(self.started_at)}" + (
                    f" ({self.cook})" if self.cook else ""
                )
            case TicketStatus.READY:
                return f"already ready since {_clock(self.ready_at)}"
            case TicketStatus.WITHDRAWN:
                return "the order was cancelled before cooking started"
            case TicketStatus.WASTED:
                return "the order was cancelled while cooking; the pizzas were thrown away"
        return f"cannot {step}"  # pragma: no cover - every status is matched above


def _clock(moment: datetime | None) -> str:
    return "?" if moment is None else moment.isoformat(timespec="seconds")
