"""The notifications service's HTTP API: customers' in-app messages and the staff's deliveries.

Who may read what:

* an order's in-app messages: the holder of the order's tracking token (``X-Tracking-Token``,
  checked against the hash OrderPlaced carried), the order's customer (a ``customer`` bearer
  token whose subject is the order's customer id) or a manager;
* a customer's messages, and marking them read or dismissed: that customer (also as
  ``/customers/me/...``, with the customer token the orders service's sign-in issues), or a
  manager;
* deliveries (every channel, with recipients and reasons): managers only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, JsonValue

from notifications.bootstrap import NotificationsService
from notifications.domain.messages import (
    Access,
    Channel,
    DeliveryStatus,
    Reader,
    order_messages_access,
)
from notifications.entrypoints import sign_in_codes
from notifications.entrypoints.lifespan import notifications_lifespan
from notifications.service_layer import queries
from notifications.settings import NotificationsSettings
from service_kit.app import service_app
from service_kit.auth import Principal, Role, optional_principal, require_roles
from service_kit.http import error_responses
from service_kit.inputs import IDENTIFIER_CONSTRAINTS


def _service(request: Request) -> NotificationsService:
    service: NotificationsService = request.app.state.service
    return service


ServiceDep = Annotated[NotificationsService, Depends(_service)]
CustomerOrManager = Annotated[Principal, Depends(require_roles(Role.CUSTOMER, Role.MANAGER))]
CustomerDep = Annotated[Principal, Depends(require_roles(Role.CUSTOMER))]
ManagerDep = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
# Declared as a credential (an API key in a header), so the document says that it is one way in
# and a bearer token the other.
_tracking_token = APIKeyHeader(
    name="X-Tracking-Token",
    scheme_name="trackingToken",
    auto_error=False,
    description="The order's tracking token, which the orders API returned once when the order "
    "was placed: 32 letters, digits, `-` or `_`.",
)
TrackingTokenDep = Annotated[str | None, Depends(_tracking_token)]

_ORDER_ID = "01a2173f-2a59-7101-9f24-859a52435820"
_CUSTOMER_ID = "01a2173f-2a58-7c4e-8a0e-2b3c4d5e6f70"
CustomerId = Annotated[
    str,
    Path(
        description="The customer's pseudonymous id.",
        examples=[_CUSTOMER_ID],
        **IDENTIFIER_CONSTRAINTS,
    ),
]
OrderId = Annotated[
    str, Path(description="The order's id.", examples=[_ORDER_ID], **IDENTIFIER_CONSTRAINTS)
]
# Message ids are PostgreSQL bigints: a larger number names no message and must not reach it.
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The message's id.", examples=[42])]
CUSTOMER_RESPONSES = error_responses(
    401,
    403,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="Neither that customer (the token's subject) nor a manager.",
    examples={403: {"detail": "customers may only read their own messages"}},
)
MANAGER_RESPONSES = error_responses(
    401,
    403,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="The token does not have the manager role.",
    examples={403: {"detail": "requires one of the roles: manager"}},
)


class MessagePublic(BaseModel):
    """An in-app message: no personal data, only the order's short id and what happened."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "order_id": _ORDER_ID,
                    "customer_id": _CUSTOMER_ID,
                    "channel": "in_app",
                    "kind": "order_received",
                    "body": "We received your order #435820: 2 pizzas, 25.98 EUR.",
                    "created_at": "2026-11-26T19:30:01Z",
                    "read_at": None,
                    "dismissed_at": None,
                }
            ]
        }
    )

    id: int
    order_id: str
    customer_id: str
    channel: str
    kind: str
    body: str
    created_at: datetime
    read_at: datetime | None = None
    dismissed_at: datetime | None = None


_DELIVERY_EXAMPLE: dict[str, JsonValue] = {
    "id": 7,
    "event_id": "01a2173f-2a60-7547-9583-01b062d7ba7e",
    "order_id": _ORDER_ID,
    "customer_id": _CUSTOMER_ID,
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

    model_config = ConfigDict(json_schema_extra={"examples": [_DELIVERY_EXAMPLE]})

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


@messages.get(
    "/orders/{order_id}/messages",
    response_model=list[MessagePublic],
    responses=error_responses(
        401,
        403,
        404,
        _401="Neither a tracking token that fits the order (`X-Tracking-Token`) nor a valid "
        "bearer token was presented; a guessed order id reveals nothing (as in the orders API).",
        _403="A valid bearer token, but neither the order's customer nor a manager.",
        _404="A manager asked about an order this service has not heard of.",
        examples={
            401: {
                "detail": "present the order's X-Tracking-Token, or a bearer token of its "
                "customer or a manager"
            },
            403: {"detail": "only the order's customer or a manager may read its messages"},
            404: {"detail": f"no order '{_ORDER_ID}' for this token"},
        },
    ),
)
async def order_messages(
    order_id: OrderId,
    service: ServiceDep,
    principal: OptionalPrincipalDep,
    tracking_token: TrackingTokenDep,
) -> list[dict[str, Any]]:
    """In-app messages about one order, oldest first: for the holder of its tracking token, its
    customer, or a manager."""
    reader = (
        None
        if principal is None
        else Reader(
            subject=principal.subject,
            is_customer=principal.has_any(Role.CUSTOMER),
            is_manager=principal.has_any(Role.MANAGER),
        )
    )
    owner = await queries.order_owner(service.sessions, order_id)
    access = order_messages_access(owner, tracking_token=tracking_token, reader=reader)
    if access is Access.NOTHING_PRESENTED:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "present the order's X-Tracking-Token, or a bearer token of its customer or a manager",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if access is Access.NOT_A_TOKEN:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "X-Tracking-Token is not a tracking token (32 letters, digits, '-' or '_')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if access is Access.WRONG_TOKEN:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the X-Tracking-Token does not fit this order",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if access is Access.NO_SUCH_ORDER:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id!r}")
    if access is Access.NOT_THEIRS:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "only the order's customer or a manager may read its messages",
        )
    return await queries.order_messages(service.sessions, order_id)


ME_RESPONSES = error_responses(
    401,
    403,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="The token is not a customer's.",
    examples={403: {"detail": "requires one of the roles: customer"}},
)
IncludeDismissed = Annotated[bool, Query(description="Dismissed messages too.")]
UnreadOnly = Annotated[bool, Query(description="Only messages not read yet.")]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many.")]


# Before /customers/{customer_id}/...: "me" would be taken for a customer id.
@messages.get("/customers/me/messages", response_model=list[MessagePublic], responses=ME_RESPONSES)
async def my_messages(
    service: ServiceDep,
    me: CustomerDep,
    include_dismissed: IncludeDismissed = False,
    unread_only: UnreadOnly = False,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """The signed-in customer (the token's subject): their in-app messages, newest first
    (dismissed ones only on request)."""
    return await queries.customer_messages(
        service.sessions,
        me.subject,
        include_dismissed=include_dismissed,
        unread_only=unread_only,
        limit=limit,
    )


MY_MARK_RESPONSES = error_responses(
    401,
    403,
    404,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="The token is not a customer's.",
    _404="No such message of the signed-in customer's.",
    examples={
        403: {"detail": "requires one of the roles: customer"},
        404: {"detail": "no message 42 of yours"},
    },
)


async def _mark_mine(
    service: NotificationsService, me: Principal, message_id: int, column: str
) -> dict[str, Any]:
    try:
        return await queries.mark_message(service.sessions, me.subject, message_id, column)
    except queries.MessageNotFound as error:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no message {message_id} of yours"
        ) from error


@messages.post(
    "/customers/me/messages/{message_id}/read",
    response_model=MessagePublic,
    responses=MY_MARK_RESPONSES,
)
async def mark_mine_read(
    message_id: MessageId, service: ServiceDep, me: CustomerDep
) -> dict[str, Any]:
    """The signed-in customer: mark one of their messages read (idempotent)."""
    return await _mark_mine(service, me, message_id, "read_at")


@messages.post(
    "/customers/me/messages/{message_id}/dismiss",
    response_model=MessagePublic,
    responses=MY_MARK_RESPONSES,
)
async def dismiss_mine(
    message_id: MessageId, service: ServiceDep, me: CustomerDep
) -> dict[str, Any]:
    """The signed-in customer: dismiss one of their messages (idempotent)."""
    return await _mark_mine(service, me, message_id, "dismissed_at")


@messages.get(
    "/customers/{customer_id}/messages",
    response_model=list[MessagePublic],
    responses=CUSTOMER_RESPONSES,
)
async def customer_messages(
    customer_id: CustomerId,
    service: ServiceDep,
    principal: CustomerOrManager,
    include_dismissed: IncludeDismissed = False,
    unread_only: UnreadOnly = False,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """The customer or a manager: the customer's in-app messages, newest first (dismissed ones
    only on request)."""
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


MARK_RESPONSES = error_responses(
    401,
    403,
    404,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="Neither that customer (the token's subject) nor a manager.",
    _404="No such message for that customer.",
    examples={
        403: {"detail": "customers may only read their own messages"},
        404: {"detail": f"no message 42 for customer '{_CUSTOMER_ID}'"},
    },
)


@messages.post(
    "/customers/{customer_id}/messages/{message_id}/read",
    response_model=MessagePublic,
    responses=MARK_RESPONSES,
)
async def mark_read(
    customer_id: CustomerId, message_id: MessageId, service: ServiceDep, who: CustomerOrManager
) -> dict[str, Any]:
    """The customer or a manager: mark one of the customer's messages read (idempotent)."""
    return await _mark(service, who, customer_id, message_id, "read_at")


@messages.post(
    "/customers/{customer_id}/messages/{message_id}/dismiss",
    response_model=MessagePublic,
    responses=MARK_RESPONSES,
)
async def dismiss(
    customer_id: CustomerId, message_id: MessageId, service: ServiceDep, who: CustomerOrManager
) -> dict[str, Any]:
    """The customer or a manager: dismiss one of the customer's messages, which leaves the
    default list (idempotent)."""
    return await _mark(service, who, customer_id, message_id, "dismissed_at")


staff = APIRouter(tags=["deliveries"])


@staff.get("/deliveries", response_model=list[DeliveryPublic], responses=MANAGER_RESPONSES)
async def list_deliveries(
    service: ServiceDep,
    _: ManagerDep,
    order_id: Annotated[
        str | None,
        Query(description="Only this order's.", examples=[_ORDER_ID], **IDENTIFIER_CONSTRAINTS),
    ] = None,
    delivery_status: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only in this status.")
    ] = None,
    channel: Annotated[Channel | None, Query(description="Only on this channel.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 200,
) -> list[dict[str, Any]]:
    """Manager: deliveries (email, SMS, in-app) with their status and, if failed, the reason."""
    return await queries.deliveries(
        service.sessions, order_id=order_id, status=delivery_status, channel=channel, limit=limit
    )


@staff.get(
    "/orders/{order_id}/deliveries",
    response_model=list[DeliveryPublic],
    responses=MANAGER_RESPONSES,
)
async def order_deliveries(
    order_id: OrderId, service: ServiceDep, _: ManagerDep
) -> list[dict[str, Any]]:
    """Manager: every delivery of one order, in the order they were recorded (at most 1000)."""
    return await queries.deliveries(
        service.sessions, order_id=order_id, status=None, channel=None, limit=1000
    )


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    return service_app(
        title="Mario's Pizzeria — Notifications",
        description=(
            "Email, SMS and in-app messages for every step of an order, sent once per event "
            "and channel. Customers read and dismiss their in-app messages; managers see every "
            "delivery with its status."
        ),
        version="1.0.0",
        lifespan=notifications_lifespan(settings),
        routers=[messages, staff, sign_in_codes.router],
    )
