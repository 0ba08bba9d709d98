"""FastAPI dependencies of the orders API, as ``Annotated`` aliases."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import APIKeyHeader

import service_kit.service
from orders.adapters import queries
from orders.adapters.queries import OrderQuery
from orders.bootstrap import OrdersService
from orders.domain.model import OrderStatus
from service_kit.auth import Principal, Role, optional_principal, require_roles
from service_kit.inputs import IDENTIFIER, IDENTIFIER_CONSTRAINTS, Rfc3339

STAFF = (Role.MANAGER, Role.CHEF, Role.DRIVER)


def client_address(request: Request) -> str:
    """The address rate limits are counted by (see ``<SERVICE>_HTTP_TRUSTED_PROXIES``)."""
    return request.client.host if request.client else "unknown"


ServiceDep = service_kit.service.ServiceDep[OrdersService]
CustomerDep = Annotated[Principal, Depends(require_roles(Role.CUSTOMER))]
ManagerDep = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
StaffDep = Annotated[Principal, Depends(require_roles(*STAFF))]
DriverDep = Annotated[Principal, Depends(require_roles(Role.DRIVER))]
PickUpDep = Annotated[Principal, Depends(require_roles(Role.MANAGER, Role.CHEF))]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
OrderId = Annotated[str, Path(**IDENTIFIER_CONSTRAINTS, description="The order's id.")]
# The customer's credential for one order: declared as a security scheme (an alternative to a
# staff bearer token), so clients and contract testers know it is one.
_tracking_token = APIKeyHeader(
    name="X-Tracking-Token",
    scheme_name="trackingToken",
    description="The tracking token returned once, when the order was placed.",
    auto_error=False,
)
TrackingToken = Annotated[str | None, Depends(_tracking_token)]


@dataclass(frozen=True)
class OrderAccess:
    """Who was let at one order: staff (``subject`` names them), the holder of its tracking
    token, or its customer signed in (``subject`` is their id)."""

    kind: Literal["staff", "tracking_token", "customer"]
    subject: str | None = None

    @property
    def shows_customer_id(self) -> bool:
        """Whether the answer may name the order's customer: not to the holder of a tracking
        token, who may be anyone it was passed on to."""
        return self.kind != "tracking_token"


def order_access(*staff_roles: Role) -> Callable[..., Awaitable[OrderAccess]]:
    """Access to one order: the holder of its tracking token, its customer (a customer token
    whose subject is the order's customer), or staff in ``staff_roles``.

    Answers 401 when nothing is presented, or when the tracking token does not fit the order
    (whether or not the order exists, so a guessed id reveals nothing), and 403 to a bearer
    token without one of the roles, or to a customer's for an order not theirs (whether or not
    it exists).
    """
    roles = ", ".join(role.value for role in staff_roles)

    async def check(
        order_id: OrderId,
        service: ServiceDep,
        principal: OptionalPrincipalDep,
        tracking_token: TrackingToken,
    ) -> OrderAccess:
        if principal is not None and set(staff_roles) & principal.roles:
            return OrderAccess("staff", principal.subject)
        if tracking_token is None:
            if principal is not None and principal.has_any(Role.CUSTOMER):
                owner = await queries.customer_of(service.sessions, order_id)
                if owner is not None and owner == principal.subject:
                    return OrderAccess("customer", principal.subject)
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, "customers may only see their own orders"
                )
            if principal is not None:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, f"requires one of the roles: {roles}"
                )
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"present the order's X-Tracking-Token, or a bearer token with one of the roles "
                f"{roles}",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not await queries.tracking_token_matches(service.sessions, order_id, tracking_token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "the X-Tracking-Token does not fit this order",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return OrderAccess("tracking_token")

    return check


ReaderDep = Annotated[OrderAccess, Depends(order_access(*STAFF))]
OwnerDep = Annotated[OrderAccess, Depends(order_access(Role.MANAGER))]


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    malformed = HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, "malformed cursor: pass next_cursor as it came"
    )
    try:
        placed_at, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        position = datetime.fromisoformat(placed_at)
    except (ValueError, UnicodeDecodeError) as error:
        raise malformed from error
    if position.tzinfo is None or not IDENTIFIER.fullmatch(order_id):
        raise malformed
    return position, order_id


@dataclass(frozen=True)
class OrderFilters:
    """The query parameters of a list of orders (`GET /orders`, `GET /customers/me/orders`):
    which orders, from where (a cursor, parsed only by ``query``), how many."""

    statuses: tuple[OrderStatus, ...]
    placed_from: datetime | None
    placed_until: datetime | None
    limit: int
    cursor: str | None

    def query(self, *, customer_id: str | None = None) -> OrderQuery:
        """The read model's query; a malformed cursor is answered 422."""
        return OrderQuery(
            customer_id=customer_id,
            statuses=self.statuses,
            placed_from=self.placed_from,
            placed_until=self.placed_until,
            after=parse_cursor(self.cursor) if self.cursor else None,
            limit=self.limit,
        )


# async: FastAPI would run a plain function in a worker thread, for no work worth one.
async def _order_filters(
    status_filter: Annotated[
        list[OrderStatus] | None, Query(alias="status", max_length=len(OrderStatus))
    ] = None,
    placed_from: Annotated[Rfc3339 | None, Query(description="Inclusive.")] = None,
    placed_until: Annotated[Rfc3339 | None, Query(description="Exclusive.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=500,
            pattern=r"^[A-Za-z0-9_=-]+$",
            description="`next_cursor` of the previous page, as it came.",
        ),
    ] = None,
) -> OrderFilters:
    return OrderFilters(tuple(status_filter or ()), placed_from, placed_until, limit, cursor)


OrderFiltersDep = Annotated[OrderFilters, Depends(_order_filters)]
