"""The staff's view of deliveries: every channel, with recipients and reasons, managers only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, JsonValue

from notifications.adapters import queries
from notifications.domain.messages import Channel, DeliveryStatus
from notifications.entrypoints.deps import (
    CUSTOMER_ID_EXAMPLE,
    ORDER_ID_EXAMPLE,
    ManagerDep,
    OrderId,
    ServiceDep,
)
from service_kit.http import error_responses
from service_kit.inputs import IDENTIFIER_CONSTRAINTS

router = APIRouter(tags=["deliveries"])

_DELIVERY_EXAMPLE: dict[str, JsonValue] = {
    "id": 7,
    "event_id": "01a2173f-2a60-7547-9583-01b062d7ba7e",
    "order_id": ORDER_ID_EXAMPLE,
    "customer_id": CUSTOMER_ID_EXAMPLE,
    "channel": "sms",
    "kind": "order_received",
    "status": "sent",
    "reason": None,
    "attempts": 1,
    "next_attempt_at": "2026-11-26T19:30:01Z",
    "recipient": "+39 06 1234 5678",
    "subject": None,
    "body": "Ciao Giulia, we received your order #435820: 2 pizzas, 25.98 EUR.",
    "provider_id": "SM0123456789abcdef",
    "created_at": "2026-11-26T19:30:01Z",
    "sent_at": "2026-11-26T19:30:02Z",
}


class DeliveryPublic(BaseModel):
    """One notice on one channel: its status, attempts and (if failed or skipped) why."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_DELIVERY_EXAMPLE]}
    )

    id: int
    event_id: str
    order_id: str
    customer_id: str | None
    channel: Channel
    kind: str
    status: DeliveryStatus
    reason: str | None
    attempts: int
    next_attempt_at: datetime
    recipient: str | None
    subject: str | None
    body: str | None
    provider_id: str | None
    created_at: datetime
    sent_at: datetime | None


MANAGER_RESPONSES = error_responses(
    401,
    403,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="The token does not have the manager role.",
    examples={403: {"detail": "requires one of the roles: manager"}},
)


@router.get("/deliveries", responses=MANAGER_RESPONSES)
async def list_deliveries(
    service: ServiceDep,
    _: ManagerDep,
    order_id: Annotated[
        str | None,
        Query(
            description="Only this order's.", examples=[ORDER_ID_EXAMPLE], **IDENTIFIER_CONSTRAINTS
        ),
    ] = None,
    delivery_status: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only in this status.")
    ] = None,
    channel: Annotated[Channel | None, Query(description="Only on this channel.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 200,
) -> list[DeliveryPublic]:
    """Manager: deliveries (email, SMS, in-app) with their status and, if failed, the reason."""
    deliveries = await queries.deliveries(
        service.sessions, order_id=order_id, status=delivery_status, channel=channel, limit=limit
    )
    return [DeliveryPublic.model_validate(delivery) for delivery in deliveries]


@router.get("/orders/{order_id}/deliveries", responses=MANAGER_RESPONSES)
async def order_deliveries(
    order_id: OrderId, service: ServiceDep, _: ManagerDep
) -> list[DeliveryPublic]:
    """Manager: every delivery of one order, in the order they were recorded (at most 1000)."""
    deliveries = await queries.deliveries(
        service.sessions, order_id=order_id, status=None, channel=None, limit=1000
    )
    return [DeliveryPublic.model_validate(delivery) for delivery in deliveries]
