"""Customers (manager): what is stored about a customer, and erasure of their personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from eventing.http import error_responses
from eventing.inputs import IDENTIFIER_CONSTRAINTS
from orders.entrypoints.deps import ManagerDep, ServiceDep
from orders.service_layer import customers
from orders.service_layer.customers import CustomerNotFound, StoredCustomer

router = APIRouter(prefix="/customers", tags=["customers"])

# Ids are UUIDs; anything else is refused before it reaches the database (422, not a 500 for
# a NUL byte that PostgreSQL cannot store in text).
CustomerId = Annotated[
    str,
    Path(
        **IDENTIFIER_CONSTRAINTS,
        description="The pseudonymous customer id, as on the customer's orders.",
    ),
]


class CustomerPublic(BaseModel):
    id: str = Field(description="Pseudonymous customer id, as on the customer's orders.")
    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    sms_opt_in: bool
    email_opt_in: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, customer: StoredCustomer) -> CustomerPublic:
        return cls(
            id=customer.id,
            name=customer.name,
            phone=customer.phone,
            email=customer.email,
            address=customer.address,
            sms_opt_in=customer.sms_opt_in,
            email_opt_in=customer.email_opt_in,
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        )


def _not_found(customer_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")


class ErasedCustomer(BaseModel):
    detail: str
    erased_at: datetime


@router.get(
    "/{customer_id}",
    response_model=CustomerPublic,
    responses={
        **error_responses(401, 403, 404),
        410: {
            "model": ErasedCustomer,
            "description": "The customer's personal data was erased; nothing is kept but when.",
            "content": {
                "application/json": {
                    "example": {
                        "detail": "the customer's personal data was erased",
                        "erased_at": "2026-11-26T09:45:45Z",
                    }
                }
            },
        },
    },
)
async def get_customer(
    customer_id: CustomerId, service: ServiceDep, _: ManagerDep
) -> CustomerPublic | JSONResponse:
    """Manager: the contact details stored for a customer (e.g. for a subject-access request)."""
    try:
        customer = await customers.get_customer(service.unit_of_work(), customer_id)
    except CustomerNotFound as error:
        raise _not_found(customer_id) from error
    if customer.erased_at is not None:
        gone = ErasedCustomer(
            detail="the customer's personal data was erased", erased_at=customer.erased_at
        )
        return JSONResponse(gone.model_dump(mode="json"), status.HTTP_410_GONE)
    return CustomerPublic.of(customer)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404),
)
async def erase_customer(customer_id: CustomerId, service: ServiceDep, _: ManagerDep) -> Response:
    """Manager: erase the customer's personal data. Their orders stay, under the same id; the
    contacts topic gets a tombstone. Erasing again changes nothing (204 again)."""
    try:
        await customers.erase_customer(service.unit_of_work(), customer_id)
    except CustomerNotFound as error:
        raise _not_found(customer_id) from error
    return Response(status_code=status.HTTP_204_NO_CONTENT)
