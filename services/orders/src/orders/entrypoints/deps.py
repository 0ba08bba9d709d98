"""FastAPI dependencies of the orders API, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import APIKeyHeader

from orders.bootstrap import OrdersService
from orders.service_layer import handlers
from service_kit.auth import Principal, Role, optional_principal, require_roles
from service_kit.inputs import IDENTIFIER_CONSTRAINTS

STAFF = (Role.MANAGER, Role.CHEF, Role.DRIVER)


def client_address(request: Request) -> str:
    """The address rate limits are counted by (see ``<SERVICE>_HTTP_TRUSTED_PROXIES``)."""
    return request.client.host if request.client else "unknown"


def _service(request: Request) -> OrdersService:
    service: OrdersService = request.app.state.service
    return service


ServiceDep = Annotated[OrdersService, Depends(_service)]
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
                owner = await handlers.customer_of(order_id, service.unit_of_work())
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
        uow = service.unit_of_work()
        if not await handlers.tracking_token_matches(order_id, tracking_token, uow):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "the X-Tracking-Token does not fit this order",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return OrderAccess("tracking_token")

    return check


ReaderDep = Annotated[OrderAccess, Depends(order_access(*STAFF))]
OwnerDep = Annotated[OrderAccess, Depends(order_access(Role.MANAGER))]
