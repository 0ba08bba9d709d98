"""Messages to customers. No infrastructure here."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    SMS = "sms"


def order_received_text(order_id: str, total: Decimal, pizzas: int) -> str:
    noun = "pizza" if pizzas == 1 else "pizzas"
    return f"We received your order {order_id[:8]} ({pizzas} {noun}, {total} EUR). Thank you!"
