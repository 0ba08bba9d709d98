"""FastAPI dependencies of the orders API, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import APIKeyHeader

from eventing.auth import Principal, Role, optional_principal, require_roles
from eventing.inputs import IDENTIFIER_CONSTRAINTS
from orders.bootstrap import OrdersService
from orders.service_layer import handlers

STAFF = (Role.MANAGER, Role.CHEF, Role.DRIVER)


def _service(request: Request) -> OrdersService:
    service: OrdersService = request.app.state.service
    return service


ServiceDep = Annotated[OrdersService, Depends(_service)]
ManagerDep = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
StaffDep = Annotated[Principal, Depends(require_roles(*STAFF))]
DriverDep = Annotated[Principal, Depends(require_roles(Role.DRIVER))]
HandOverDep = Annotated[Principal, Depends(require_roles(Role.MANAGER, Role.CHEF))]
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


def order_access(*staff_roles: Role) -> Callable[..., Awaitable[str]]:
    """Access to one order: the customer holding its tracking token, or staff in ``staff_roles``.

    Answers 401 when neither is presented, or when the tracking token does not fit the order
    (whether or not the order exists, so a guessed id reveals nothing), and 403 to a bearer
    token without one of the roles.
    """
    roles = ", ".join(role.value for role in staff_roles)

    async def check(
        order_id: OrderId,
        service: ServiceDep,
        principal: OptionalPrincipalDep,
        tracking_token: TrackingToken,
    ) -> str:
        if principal is not None and set(staff_roles) & principal.roles:
            return f"staff:{principal.subject}"
        if tracking_token is None:
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
        return "customer"

    return check


ReaderDep = Annotated[str, Depends(order_access(*STAFF))]
OwnerDep = Annotated[str, Depends(order_access(Role.MANAGER))]
