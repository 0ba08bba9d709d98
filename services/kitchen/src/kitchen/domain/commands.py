"""What cooks ask of the kitchen; each command has one handler in ``service_layer.commands``."""

from __future__ import annotations

from dataclasses import dataclass

from kitchen.domain.tickets import Ticket
from service_kit.commands import Command


@dataclass(frozen=True)
class StartCooking(Command[Ticket]):
    """``cook`` starts cooking the order's queued ticket (``POST /tickets/{id}/start``)."""

    order_id: str
    cook: str


@dataclass(frozen=True)
class MarkReady(Command[Ticket]):
    """The pizzas of the order's cooking ticket are done (``POST /tickets/{id}/ready``)."""

    order_id: str
