"""FastAPI dependencies of the kitchen API, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from eventing.auth import Principal, Role, require_roles
from kitchen.bootstrap import KitchenService


def _service(request: Request) -> KitchenService:
    service: KitchenService = request.app.state.service
    return service


ServiceDep = Annotated[KitchenService, Depends(_service)]
CookDep = Annotated[Principal, Depends(require_roles(Role.CHEF, Role.MANAGER))]
