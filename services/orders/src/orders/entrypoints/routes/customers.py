"""Customers: a signed-in customer's own profile and orders (``/customers/me``), and what a
manager may see and do about any customer or guest contact: read, correct, erase."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from orders.adapters import queries
from orders.bootstrap import OrdersService
from orders.domain import customers as rules
from orders.domain.commands import ChangeProfile, EraseCustomer, ProveContact
from orders.domain.customers import (
    ContactTaken,
    CustomerErased,
    CustomerNotFound,
    StoredCustomer,
    Unreachable,
)
from orders.domain.sign_in import CODE_PATTERN, Contact, ContactKind
from orders.entrypoints.deps import (
    CustomerDep,
    ManagerDep,
    OrderFiltersDep,
    ServiceDep,
    client_address,
)
from orders.entrypoints.routes.orders import (
    Address,
    Email,
    Name,
    OrderPage,
    Phone,
    WithContacts,
    customer_refused,
)
from orders.entrypoints.routes.sign_in import code_refused, sign_in_setup, too_many
from orders.service_layer.sign_in import CodeRefused
from service_kit.http import error_responses
from service_kit.inputs import IDENTIFIER_CONSTRAINTS

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
Code = Annotated[str, Field(pattern=CODE_PATTERN, examples=["042917"])]
# JSON true or false, not 0, 1 or "yes", as the document says.
StrictBool = Annotated[bool, Field(strict=True)]


class CustomerPublic(BaseModel):
    id: str = Field(description="Pseudonymous customer id, as on the customer's orders.")
    guest: bool = Field(
        description="A guest order's contact snapshot (placed without signing in), not a "
        "customer: nobody signs in to it, and no phone or email lookup finds it."
    )
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
            guest=customer.guest,
            name=customer.name,
            phone=customer.phone,
            email=customer.email,
            address=customer.address,
            sms_opt_in=customer.sms_opt_in,
            email_opt_in=customer.email_opt_in,
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        )


class ProfileChange(WithContacts):
    """The fields to change; those left out stay as they are. `null` removes a phone number,
    an email address or the address (one way to reach the customer must stay)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"address": "Via Roma 1, 00100 Roma"}]},
    )

    name: Name | SkipJsonSchema[None] = None
    phone: Phone | None = None
    email: Email | None = None
    address: Address | None = None
    sms_opt_in: StrictBool | SkipJsonSchema[None] = None
    email_opt_in: StrictBool | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _only_what_may_be_removed(self) -> ProfileChange:
        for field in ("name", "sms_opt_in", "email_opt_in"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be removed, only changed")
        return self

    def changes(self) -> dict[str, Any]:
        return {
            field: getattr(self, field) for field in self.model_fields_set & rules.PROFILE_FIELDS
        }


class ProfileUpdate(ProfileChange):
    """A customer's own change. A new phone number or email address needs the code sent to
    it (ask for one with `POST /customers/sign-in/code`), as `phone_code` / `email_code`: only
    someone who receives its messages may make it theirs."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Giulia Rossi", "address": "Via Roma 1, 00100 Roma"}]
        },
    )

    phone_code: Code | SkipJsonSchema[None] = None
    email_code: Code | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _codes_are_codes(self) -> ProfileUpdate:
        for field in ("phone_code", "email_code"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} must be the code that was sent, if given")
        return self


class ErasedCustomer(BaseModel):
    detail: str
    erased_at: datetime


ERASED: dict[int | str, dict[str, Any]] = {
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
    }
}
ME_RESPONSES = {
    **error_responses(
        401,
        403,
        404,
        _403="The token is not a customer's.",
        _404="The customer token names no customer.",
        examples={
            403: {"detail": "requires one of the roles: customer"},
            404: {"detail": "this customer token names no customer"},
        },
    ),
    **ERASED,
}


def _gone(erased_at: datetime) -> JSONResponse:
    gone = ErasedCustomer(detail="the customer's personal data was erased", erased_at=erased_at)
    return JSONResponse(gone.model_dump(mode="json"), status.HTTP_410_GONE)


def _not_found(customer_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")


async def _own(service: OrdersService, customer_id: str) -> StoredCustomer:
    """The signed-in customer: 404 if the token names none (or a guest), 410 if erased."""
    try:
        customer = await queries.get_customer(service.sessions, customer_id)
    except CustomerNotFound as error:
        raise customer_refused(error, not_found=status.HTTP_404_NOT_FOUND) from error
    if customer.guest:
        raise customer_refused(CustomerNotFound(customer_id), not_found=status.HTTP_404_NOT_FOUND)
    return customer


# ------------------------------------------------------------------ the signed-in customer
@router.get("/me", response_model=CustomerPublic, responses=ME_RESPONSES)
async def my_profile(service: ServiceDep, me: CustomerDep) -> CustomerPublic | JSONResponse:
    """The signed-in customer: their stored details."""
    customer = await _own(service, me.subject)
    if customer.erased_at is not None:
        return _gone(customer.erased_at)
    return CustomerPublic.of(customer)


@router.patch(
    "/me",
    response_model=CustomerPublic,
    responses={
        **ME_RESPONSES,
        **error_responses(
            400,
            409,
            413,
            429,
            _400="The code for a new phone number or email is wrong, expired, used or dead.",
            _409="The new phone number or email address is another customer's.",
            _422="A field is not acceptable, a new phone or email came without its code, or "
            "neither a phone number nor an email address would be left.",
            examples={
                400: {"detail": "the code is wrong; 4 tries left", "field": "phone_code"},
                409: {"detail": "this phone number belongs to another customer"},
            },
        ),
    },
)
async def change_my_profile(
    body: ProfileUpdate, service: ServiceDep, me: CustomerDep, request: Request
) -> CustomerPublic | JSONResponse:
    """The signed-in customer: change their details (published to the notifications service).
    A new phone number or email address needs the code sent to it."""
    current = await _own(service, me.subject)
    if current.erased_at is not None:
        return _gone(current.erased_at)
    changes = body.changes()
    try:
        wanted = current.profile.changed(changes)
    except Unreachable as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    fresh = wanted.new_contacts(current.profile)
    if fresh:
        setup = sign_in_setup(service)
        for field, value in fresh:
            code = body.phone_code if field == "phone" else body.email_code
            if code is None:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    [
                        {
                            "loc": ["body", f"{field}_code"],
                            "msg": f"a new {field} needs the code sent to it: ask for one with "
                            f'POST /customers/sign-in/code {{"{field}": ...}}, then give it here',
                            "type": "missing",
                        }
                    ],
                )
            client = client_address(request)
            too_many(setup.attempts_per_client, client, "attempts")
            try:
                await service.commands.handle(
                    ProveContact(Contact(ContactKind(field), value), code)
                )
            except CodeRefused as refused:
                return code_refused(refused, field=f"{field}_code")
            setup.attempts_per_client.give_back(client)  # the limit is on wrong tries
    return await _change(service, me.subject, changes)


async def _change(
    service: OrdersService, customer_id: str, changes: dict[str, Any]
) -> CustomerPublic | JSONResponse:
    try:
        changed = await service.commands.handle(ChangeProfile(customer_id, changes))
    except CustomerNotFound as error:
        raise _not_found(customer_id) from error
    except CustomerErased as error:
        return _gone(error.erased_at)
    except ContactTaken as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    except Unreachable as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    return CustomerPublic.of(changed)


@router.get("/me/orders", response_model=OrderPage, responses=ME_RESPONSES)
async def my_orders(
    service: ServiceDep, me: CustomerDep, filters: OrderFiltersDep
) -> OrderPage | JSONResponse:
    """The signed-in customer: the orders they placed signed in, newest first, one page at a
    time (as `GET /orders`). Guest orders are not theirs: nothing proves who placed them."""
    customer = await _own(service, me.subject)
    if customer.erased_at is not None:
        return _gone(customer.erased_at)
    query = filters.query(customer_id=customer.id)
    return OrderPage.of(await queries.list_orders(service.sessions, query), query)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(
        401,
        403,
        404,
        _403="The token is not a customer's.",
        _404="The customer token names no customer.",
    ),
)
async def erase_me(service: ServiceDep, me: CustomerDep) -> Response:
    """The signed-in customer: erase their personal data, as a manager's erasure does (the
    orders stay, under the same id; the contacts topic gets a tombstone). Again: 204 again."""
    await _own(service, me.subject)
    await service.commands.handle(EraseCustomer(me.subject))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------ managers
@router.get(
    "/{customer_id}",
    response_model=CustomerPublic,
    responses={**error_responses(401, 403, 404), **ERASED},
)
async def get_customer(
    customer_id: CustomerId, service: ServiceDep, _: ManagerDep
) -> CustomerPublic | JSONResponse:
    """Manager: the contact details stored for a customer or a guest order (e.g. for a
    subject-access request)."""
    try:
        customer = await queries.get_customer(service.sessions, customer_id)
    except CustomerNotFound as error:
        raise _not_found(customer_id) from error
    if customer.erased_at is not None:
        return _gone(customer.erased_at)
    return CustomerPublic.of(customer)


@router.patch(
    "/{customer_id}",
    response_model=CustomerPublic,
    responses={
        **error_responses(
            401,
            403,
            404,
            409,
            413,
            _409="The new phone number or email address is another customer's.",
            _422="A field is not acceptable, or neither a phone number nor an email address "
            "would be left.",
            examples={409: {"detail": "this phone number belongs to another customer"}},
        ),
        **ERASED,
    },
)
async def change_customer(
    customer_id: CustomerId, body: ProfileChange, service: ServiceDep, _: ManagerDep
) -> CustomerPublic | JSONResponse:
    """Manager: correct a customer's (or a guest order's) details; published like any change."""
    return await _change(service, customer_id, body.changes())


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404),
)
async def erase_customer(customer_id: CustomerId, service: ServiceDep, _: ManagerDep) -> Response:
    """Manager: erase the customer's (or guest's) personal data. Their orders stay, under the
    same id; the contacts topic gets a tombstone. Erasing again changes nothing (204 again)."""
    try:
        await service.commands.handle(EraseCustomer(customer_id))
    except CustomerNotFound as error:
        raise _not_found(customer_id) from error
    return Response(status_code=status.HTTP_204_NO_CONTENT)
