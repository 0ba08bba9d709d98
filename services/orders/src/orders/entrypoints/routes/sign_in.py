"""Customers sign in with a one-time code sent to their phone (SMS) or email.

``POST /customers/sign-in/code`` sends a code to the phone number or email address given, whoever it
belongs to, and answers the same in every case: nothing tells a caller whether a contact is a
customer's. ``POST /customers/sign-in/token`` trades the code for a customer token (a JWT whose
subject is the customer id, for the orders and notifications APIs); a contact that is nobody's
yet becomes a new customer's, since its messages reach whoever presents the code.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.json_schema import SkipJsonSchema

from orders.adapters import metrics
from orders.adapters.notifications import CodeNotSent
from orders.bootstrap import OrdersService, SignInSetup
from orders.domain.commands import SendSignInCode, SignIn
from orders.domain.sign_in import CODE_PATTERN, Contact, ContactKind, Verdict
from orders.entrypoints.deps import ServiceDep, client_address
from orders.entrypoints.routes.orders import Email, Name, Phone, WithContacts
from orders.service_layer.sign_in import CodeRefused
from service_kit.auth import Role, audience_of, mint_token
from service_kit.http import error_responses
from service_kit.limits import RateLimit, retry_after_header

log = logging.getLogger("orders.sign_in")

router = APIRouter(prefix="/customers/sign-in", tags=["sign-in"])

_ONE_CONTACT: dict[str, JsonValue] = {
    "oneOf": [
        {"required": ["phone"], "not": {"required": ["email"]}},
        {"required": ["email"], "not": {"required": ["phone"]}},
    ]
}


class _ToContact(WithContacts):
    """A phone number or an email address: exactly one."""

    phone: Phone | SkipJsonSchema[None] = None
    email: Email | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _ToContact:
        for field in self.model_fields_set:
            if getattr(self, field) is None:
                raise ValueError(f"{field} is not null: leave it out instead")
        if (self.phone is None) == (self.email is None):
            raise ValueError("give either a phone number or an email address")
        return self

    def contact(self) -> Contact:
        if self.phone is not None:
            return Contact(ContactKind.PHONE, self.phone)
        assert self.email is not None
        return Contact(ContactKind.EMAIL, self.email)


class CodeRequest(_ToContact):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={**_ONE_CONTACT, "examples": [{"phone": "+39 06 1234 5678"}]},
    )


class TokenRequest(_ToContact):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **_ONE_CONTACT,
            "examples": [{"phone": "+39 06 1234 5678", "code": "042917"}],
        },
    )

    code: Annotated[
        str,
        Field(pattern=CODE_PATTERN, description="The code that was sent.", examples=["042917"]),
    ]
    name: Name | SkipJsonSchema[None] = Field(
        default=None,
        description="The customer's name, if this signs up a new customer (ignored otherwise).",
    )


class CodeSent(BaseModel):
    detail: str
    expires_in_seconds: int = Field(description="How long the code is valid.")


class CustomerToken(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
                    "token_type": "bearer",
                    "expires_in": 3600,
                    "customer_id": "01a2173f-2a58-7c4e-8a0e-2b3c4d5e6f70",
                    "new_customer": False,
                }
            ]
        }
    )

    access_token: str = Field(
        description="A JWT for the orders and notifications APIs: `Authorization: Bearer ...`."
    )
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int = Field(description="Seconds the token is valid.")
    customer_id: str
    new_customer: bool = Field(description="Whether this code made a new customer.")


def sign_in_setup(service: OrdersService) -> SignInSetup:
    """How sign-in works here, or a 503 saying why it does not (not set up, or JWKS mode)."""
    setup = service.sign_in
    if setup is None or setup.unavailable is not None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            setup.unavailable if setup is not None else "sign-in is not set up",
        )
    return setup


def too_many(limit: RateLimit, key: str, kind: Literal["client", "contact", "attempts"]) -> None:
    wait = limit.take(key)
    if wait is None:
        return
    metrics.sign_in_limited(kind)
    who = {
        "client": "sign-in codes asked from this address",
        "contact": "sign-in codes asked for this phone number or email",
        "attempts": "sign-in attempts from this address",
    }[kind]
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"too many {who}; retry in {retry_after_header(wait)} s",
        headers={"Retry-After": retry_after_header(wait)},
    )


def code_refused(refused: CodeRefused, *, field: str = "code") -> JSONResponse:
    metrics.signed_in("refused")
    check = refused.check
    document: dict[str, Any] = {
        "detail": str(refused),
        "field": field,
        "reason": check.verdict.value,
    }
    if check.verdict is Verdict.WRONG:
        document["attempts_left"] = check.attempts_left
    return JSONResponse(document, status.HTTP_400_BAD_REQUEST)


UNAVAILABLE = error_responses(
    503,
    _503="Sign-in is not set up here, customers sign in with the identity provider (JWKS "
    "mode), or the notifications service could not take the code now.",
    examples={
        503: {
            "detail": "the code could not be sent (the notifications service is unreachable "
            "(ConnectError)); retry later"
        }
    },
)


@router.post(
    "/code",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CodeSent,
    responses={**error_responses(413, 429), **UNAVAILABLE},
)
async def ask_for_code(body: CodeRequest, service: ServiceDep, request: Request) -> CodeSent:
    """Anyone: send a sign-in code to this phone number (SMS) or email address. The answer is
    the same whether or not the contact is a customer's."""
    setup = sign_in_setup(service)
    contact = body.contact()
    too_many(setup.codes_per_client, client_address(request), "client")
    too_many(setup.codes_per_contact, str(contact), "contact")
    minutes = setup.policy.code_ttl.total_seconds() / 60
    try:
        await service.commands.handle(SendSignInCode(contact))
    except CodeNotSent as error:
        if error.retriable:
            setup.codes_per_contact.give_back(str(contact))
            metrics.code_sent("not_sent")
            log.warning("sign-in code by %s not sent: %s", contact.kind.value, error.reason)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the code could not be sent ({error.reason}); retry later",
                headers={"Retry-After": "5"},
            ) from error
        # Answered like any other: a refusal must not tell which contacts exist.
        metrics.code_sent("refused")
        log.info("sign-in code by %s refused by the provider", contact.kind.value)
    else:
        metrics.code_sent("sent")
    return CodeSent(
        detail=f"a code is on its way to this {_kind(contact)} if it can receive messages; it "
        f"is valid for {minutes:g} minutes",
        expires_in_seconds=int(setup.policy.code_ttl.total_seconds()),
    )


def _kind(contact: Contact) -> str:
    return "phone number" if contact.kind is ContactKind.PHONE else "email address"


@router.post(
    "/token",
    response_model=CustomerToken,
    responses={
        **error_responses(
            400,
            413,
            429,
            _400="The code is wrong, expired, used or dead (too many wrong tries); `reason` "
            "says which (`wrong`, `expired`, `spent`, `no code`), `attempts_left` how many "
            "tries a wrong code has left.",
            examples={
                400: {
                    "detail": "the code is wrong; 4 tries left",
                    "field": "code",
                    "reason": "wrong",
                    "attempts_left": 4,
                }
            },
        ),
        **UNAVAILABLE,
    },
)
async def trade_code(
    body: TokenRequest, service: ServiceDep, request: Request
) -> CustomerToken | JSONResponse:
    """Anyone holding a code: the customer token of the phone number or email address it was
    sent to. A contact that is nobody's yet signs up a new customer."""
    setup = sign_in_setup(service)
    client = client_address(request)
    too_many(setup.attempts_per_client, client, "attempts")
    try:
        customer, created = await service.commands.handle(
            SignIn(body.contact(), body.code, name=body.name)
        )
    except CodeRefused as refused:
        return code_refused(refused)
    setup.attempts_per_client.give_back(client)  # the limit is on wrong tries
    try:
        token = mint_token(
            service.token_verifier.settings,
            customer.id,
            [Role.CUSTOMER],
            ttl_seconds=setup.token_ttl_seconds,
            audiences=[audience_of("orders"), audience_of("notifications")],
        )
    except ValueError as error:  # the settings refusals name it at start-up; a last net
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error
    metrics.signed_in("new_customer" if created else "customer")
    log.info("customer %s signed in%s", customer.id, " (new)" if created else "")
    return CustomerToken(
        access_token=token,
        expires_in=setup.token_ttl_seconds,
        customer_id=customer.id,
        new_customer=created,
    )
