"""Kitchen tickets: what the kitchen has to cook. No infrastructure here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TicketStatus(StrEnum):
    QUEUED = "queued"
    COOKING = "cooking"
    READY = "ready"
    WITHDRAWN = "withdrawn"


@dataclass
class Ticket:
    order_id: str
    pizzas: int
    status: TicketStatus
    queued_at: datetime
