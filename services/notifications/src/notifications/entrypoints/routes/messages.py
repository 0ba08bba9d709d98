"""Customers' in-app messages: an order's, for the holder of its tracking token, its customer or
a manager; a customer's, and marking them read or dismissed, for that customer (also as
``/customers/me/...``, with the customer token the orders service's sign-in issues) or a
manager."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict

from notifications.adapters import queries
from notifications.bootstrap import NotificationsService
from notifications.domain.commands import Dismiss, MarkRead
from notifications.domain.messages import (
    Access,
    MessageNotFound,
    Reader,
    order_messages_access,
)
from notifications.entrypoints.deps import (
    CUSTOMER_ID_EXAMPLE,
    ORDER_ID_EXAMPLE,
    CustomerDep,
    CustomerId,
    CustomerOrManager,
    MessageId,
    OptionalPrincipalDep,
    OrderId,
    ServiceDep,
    TrackingTokenDep,
)
from service_kit.auth import Principal, Role
from service_kit.http import error_responses

router = APIRouter(tags=["messages"])


class MessagePublic(BaseModel):
    """An in-app message: no personal data, only the order's short id and what happened."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "order_id": ORDER_ID_EXAMPLE,
                    "customer_id": CUSTOMER_ID_EXAMPLE,
                    "channel": "in_app",
                    "kind": "order_received",
                    "body": "We received your order #435820: 2 pizzas, 25.98 EUR.",
                    "created_at": "2026-11-26T19:30:01Z",
                    "read_at": None,
                    "dismissed_at": None,
                }
            ]
        },
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


CUSTOMER_RESPONSES = error_responses(
    401,
    403,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="Neither that customer (the token's subject) nor a manager.",
    examples={403: {"detail": "customers may only read their own messages"}},
)
ME_RESPONSES = error_responses(
    401,
    403,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="The token is not a customer's.",
    examples={403: {"detail": "requires one of the roles: customer"}},
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
MARK_RESPONSES = error_responses(
    401,
    403,
    404,
    _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
    _403="Neither that customer (the token's subject) nor a manager.",
    _404="No such message for that customer.",
    examples={
        403: {"detail": "customers may only read their own messages"},
        404: {"detail": f"no message 42 for customer '{CUSTOMER_ID_EXAMPLE}'"},
    },
)
IncludeDismissed = Annotated[bool, Query(description="Dismissed messages too.")]
UnreadOnly = Annotated[bool, Query(description="Only messages not read yet.")]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many.")]


def _own(principal: Principal, customer_id: str) -> None:
    if principal.has_any(Role.MANAGER) or principal.subject == customer_id:
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, detail="customers may only read their own messages"
    )


@router.get(
    "/orders/{order_id}/messages",
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
            404: {"detail": f"no order '{ORDER_ID_EXAMPLE}' for this token"},
        },
    ),
)
async def order_messages(
    order_id: OrderId,
    service: ServiceDep,
    principal: OptionalPrincipalDep,
    tracking_token: TrackingTokenDep,
) -> list[MessagePublic]:
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
    messages = await queries.order_messages(service.sessions, order_id)
    return [MessagePublic.model_validate(message) for message in messages]


# The handlers the /customers/me/... and /customers/{customer_id}/... routes share: the routes
# differ in who may call them and in how a missing message is worded, not in what they do.
async def _messages(
    service: NotificationsService,
    customer_id: str,
    *,
    include_dismissed: bool,
    unread_only: bool,
    limit: int,
) -> list[MessagePublic]:
    messages = await queries.customer_messages(
        service.sessions,
        customer_id,
        include_dismissed=include_dismissed,
        unread_only=unread_only,
        limit=limit,
    )
    return [MessagePublic.model_validate(message) for message in messages]


async def _mark(
    service: NotificationsService, command: MarkRead | Dismiss, missing: str
) -> MessagePublic:
    try:
        return MessagePublic.model_validate(await service.commands.handle(command))
    except MessageNotFound as error:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no message {command.message_id} {missing}"
        ) from error


# Before /customers/{customer_id}/...: "me" would be taken for a customer id.
@router.get("/customers/me/messages", responses=ME_RESPONSES)
async def my_messages(
    service: ServiceDep,
    me: CustomerDep,
    include_dismissed: IncludeDismissed = False,
    unread_only: UnreadOnly = False,
    limit: Limit = 100,
) -> list[MessagePublic]:
    """The signed-in customer (the token's subject): their in-app messages, newest first
    (dismissed ones only on request)."""
    return await _messages(
        service,
        me.subject,
        include_dismissed=include_dismissed,
        unread_only=unread_only,
        limit=limit,
    )


@router.post("/customers/me/messages/{message_id}/read", responses=MY_MARK_RESPONSES)
async def mark_mine_read(
    message_id: MessageId, service: ServiceDep, me: CustomerDep
) -> MessagePublic:
    """The signed-in customer: mark one of their messages read (idempotent)."""
    return await _mark(service, MarkRead(me.subject, message_id), "of yours")


@router.post("/customers/me/messages/{message_id}/dismiss", responses=MY_MARK_RESPONSES)
async def dismiss_mine(
    message_id: MessageId, service: ServiceDep, me: CustomerDep
) -> MessagePublic:
    """The signed-in customer: dismiss one of their messages (idempotent)."""
    return await _mark(service, Dismiss(me.subject, message_id), "of yours")


@router.get("/customers/{customer_id}/messages", responses=CUSTOMER_RESPONSES)
async def customer_messages(
    customer_id: CustomerId,
    service: ServiceDep,
    principal: CustomerOrManager,
    include_dismissed: IncludeDismissed = False,
    unread_only: UnreadOnly = False,
    limit: Limit = 100,
) -> list[MessagePublic]:
    """The customer or a manager: the customer's in-app messages, newest first (dismissed ones
    only on request)."""
    _own(principal, customer_id)
    return await _messages(
        service,
        customer_id,
        include_dismissed=include_dismissed,
        unread_only=unread_only,
        limit=limit,
    )


@router.post("/customers/{customer_id}/messages/{message_id}/read", responses=MARK_RESPONSES)
async def mark_read(
    customer_id: CustomerId, message_id: MessageId, service: ServiceDep, who: CustomerOrManager
) -> MessagePublic:
    """The customer or a manager: mark one of the customer's messages read (idempotent)."""
    _own(who, customer_id)
    missing = f"for customer {customer_id!r}"
    return await _mark(service, MarkRead(customer_id, message_id), missing)


@router.post("/customers/{customer_id}/messages/{message_id}/dismiss", responses=MARK_RESPONSES)
async def dismiss(
    customer_id: CustomerId, message_id: MessageId, service: ServiceDep, who: CustomerOrManager
) -> MessagePublic:
    """The customer or a manager: dismiss one of the customer's messages, which leaves the
    default list (idempotent)."""
    _own(who, customer_id)
    missing = f"for customer {customer_id!r}"
    return await _mark(service, Dismiss(customer_id, message_id), missing)
