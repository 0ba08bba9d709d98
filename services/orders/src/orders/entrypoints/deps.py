"""FastAPI dependencies of the orders API, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from eventing.auth import Principal, Role, optional_principal, require_roles
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


def order_access(*staff_roles: Role) -> Callable[..., Awaitable[str]]:
    """Access to one order: the customer holding its tracking token, or staff in ``staff_roles``.

    Answers 401 when neither is presented and 404 when the token does not fit the order, so a
    guessed order id reveals nothing.
    """

    async def check(
        order_id: str,
        service: ServiceDep,
        principal: OptionalPrincipalDep,
        x_tracking_token: Annotated[
            str | None,
            Header(description="The tracking token returned when the order was placed."),
        ] = None,
    ) -> str:
        if principal is not None and set(staff_roles) & principal.roles:
            return f"staff:{principal.subject}"
        if x_tracking_token is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "present the order's X-Tracking-Token, or a bearer token with one of the roles "
                + ", ".join(role.value for role in staff_roles),
                headers={"WWW-Authenticate": "Bearer"},
            )
        uow = service.unit_of_work()
        if not await handlers.tracking_token_matches(order_id, x_tracking_token, uow):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id!r} for this token")
        return "customer"

    return check


ReaderDep = Annotated[str, Depends(order_access(*STAFF))]
OwnerDep = Annotated[str, Depends(order_access(Role.MANAGER))]
