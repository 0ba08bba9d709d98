"""FastAPI dependencies of the kitchen API, as ``Annotated`` aliases, and what its routes may
answer besides success."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Path

import service_kit.service
from kitchen.bootstrap import KitchenService
from service_kit.auth import Principal, Role, require_roles
from service_kit.http import error_responses
from service_kit.inputs import IDENTIFIER_CONSTRAINTS

ServiceDep = service_kit.service.ServiceDep[KitchenService]
CookDep = Annotated[Principal, Depends(require_roles(Role.CHEF, Role.MANAGER))]
OrderId = Annotated[
    str,
    Path(
        description="The order's id.",
        examples=["01a2173f-2a59-7101-9f24-859a52435820"],
        **IDENTIFIER_CONSTRAINTS,
    ),
]


def cook_responses(
    *codes: int, examples: Mapping[int, Mapping[str, Any]] | None = None, **descriptions: str
) -> dict[int | str, dict[str, Any]]:
    """Every kitchen route needs a cook's token: 401 and 403, plus ``codes``."""
    return error_responses(
        401,
        403,
        *codes,
        examples={403: {"detail": "requires one of the roles: chef, manager"}, **(examples or {})},
        _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
        _403="The token has neither the chef nor the manager role.",
        **descriptions,
    )
