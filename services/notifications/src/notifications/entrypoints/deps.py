"""FastAPI dependencies of the notifications API, as ``Annotated`` aliases, and the path
parameters its routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import APIKeyHeader

import service_kit.service
from notifications.bootstrap import NotificationsService
from service_kit.auth import Principal, Role, optional_principal, require_roles
from service_kit.inputs import IDENTIFIER_CONSTRAINTS

ServiceDep = service_kit.service.ServiceDep[NotificationsService]
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

ORDER_ID_EXAMPLE = "01a2173f-2a59-7101-9f24-859a52435820"
CUSTOMER_ID_EXAMPLE = "01a2173f-2a58-7c4e-8a0e-2b3c4d5e6f70"
CustomerId = Annotated[
    str,
    Path(
        description="The customer's pseudonymous id.",
        examples=[CUSTOMER_ID_EXAMPLE],
        **IDENTIFIER_CONSTRAINTS,
    ),
]
OrderId = Annotated[
    str,
    Path(description="The order's id.", examples=[ORDER_ID_EXAMPLE], **IDENTIFIER_CONSTRAINTS),
]
# Message ids are PostgreSQL bigints: a larger number names no message and must not reach it.
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The message's id.", examples=[42])]
