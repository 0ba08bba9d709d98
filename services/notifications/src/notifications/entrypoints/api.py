"""The notifications service's HTTP API: customers' in-app messages and the staff's deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from pydantic import BaseModel

from eventing.auth import Principal, Role, require_roles
from eventing.http import protect
from eventing.tracing import TracingMiddleware
from notifications.bootstrap import NotificationsService
from notifications.domain.messages import Channel, DeliveryStatus
from notifications.entrypoints.lifespan import notifications_lifespan
from notifications.service_layer import queries
from notifications.settings import NotificationsSettings


def _service(request: Request) -> NotificationsService:
    service: NotificationsService = request.app.state.service
    return service


ServiceDep = Annotated[NotificationsService, Depends(_service)]
CustomerOrManager = Annotated[Principal, Depends(require_roles(Role.CUSTOMER, Role.MANAGER))]
ManagerDep = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
CustomerId = Annotated[str, Path(min_length=1, max_length=200)]
MessageId = Annotated[int, Path(ge=1, description="The message's id.")]

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "Neither that customer (token subject) nor a manager."},
}


class MessagePublic(BaseModel):
    id: int
    order_id: str
    customer_id: str
    channel: str
    kind: str
    body: str
    created_at: datetime
    read_at: datetime | None = None
    dismissed_at: datetime | None = None


class DeliveryPublic(BaseModel):
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


def _own(principal: Principal, customer_id: str) -> None:
    if principal.has_any(Role.MANAGER) or principal.subject == customer_id:
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, detail="customers may only read their own messages"
    )


messages = APIRouter(tags=["messages"])


@messages.get("/orders/{order_id}/messages", response_model=list[MessagePublic])
async def order_messages(order_id: str, service: ServiceDep) -> list[dict[str, Any]]:
    """In-app messages about one order, oldest first (order ids are unguessable)."""
    return await queries.order_messages(service.sessions, order_id)


@messages.get(
    "/customers/{customer_id}/messages",
    response_model=list[MessagePublic],
    responses=AUTH_RESPONSES,
)
async def customer_messages(
    customer_id: CustomerId,
    service: ServiceDep,
    principal: CustomerOrManager,
    include_dismissed: bool = False,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """A customer's in-app messages, newest first (dismissed ones only on request)."""
    _own(principal, customer_id)
    return await queries.customer_messages(
        service.sessions,
        customer_id,
        include_dismissed=include_dismissed,
        unread_only=unread_only,
        limit=limit,
    )


async def _mark(
    service: NotificationsService,
    principal: Principal,
    customer_id: str,
    message_id: int,
    column: str,
) -> dict[str, Any]:
    _own(principal, customer_id)
    try:
        return await queries.mark_message(service.sessions, customer_id, message_id, column)
    except queries.MessageNotFound as error:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no message {message_id} for customer {customer_id!r}",
        ) from error


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "No such message for that customer."},
}


@messages.post(
    "/customers/{customer_id}/messages/{message_id}/read",
    response_model=MessagePublic,
    responses=NOT_FOUND,
)
async def mark_read(
    customer_id: CustomerId, message_id: MessageId, service: ServiceDep, who: CustomerOrManager
) -> dict[str, Any]:
    """Mark one of the customer's messages read (idempotent)."""
    return await _mark(service, who, customer_id, message_id, "read_at")


@messages.post(
    "/customers/{customer_id}/messages/{message_id}/dismiss",
    response_model=MessagePublic,
    responses=NOT_FOUND,
)
async def dismiss(
    customer_id: CustomerId, message_id: MessageId, service: ServiceDep, who: CustomerOrManager
) -> dict[str, Any]:
    """Dismiss one of the customer's messages: it leaves the default list (idempotent)."""
    return await _mark(service, who, customer_id, message_id, "dismissed_at")


staff = APIRouter(tags=["deliveries"])


@staff.get("/deliveries", response_model=list[DeliveryPublic], responses=AUTH_RESPONSES)
async def list_deliveries(
    service: ServiceDep,
    _: ManagerDep,
    order_id: Annotated[str | None, Query(min_length=1)] = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Manager: deliveries (email, SMS, in-app) with their status and, if failed, the reason."""
    return await queries.deliveries(
        service.sessions, order_id=order_id, status=delivery_status, channel=channel, limit=limit
    )


@staff.get(
    "/orders/{order_id}/deliveries", response_model=list[DeliveryPublic], responses=AUTH_RESPONSES
)
async def order_deliveries(
    order_id: str, service: ServiceDep, _: ManagerDep
) -> list[dict[str, Any]]:
    """Manager: every delivery of one order, in the order they were recorded."""
    return await queries.deliveries(
        service.sessions, order_id=order_id, status=None, channel=None, limit=1000
    )


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    app = FastAPI(
        title="Mario's Pizzeria — Notifications",
        description=(
            "Email, SMS and in-app messages for every step of an order, sent once per event "
            "and channel. Customers read and dismiss their in-app messages; managers see every "
            "delivery with its status."
        ),
        version="1.0.0",
        lifespan=notifications_lifespan(settings),
    )
    protect(app)
    app.add_middleware(TracingMiddleware)
    app.include_router(messages)
    app.include_router(staff)
    return app
