"""``POST /sign-in-codes``: the orders service hands over a sign-in code to send, at once, by
SMS or email. Only the orders service may (the shared bearer token), and the code is kept
nowhere here: not in ``deliveries``, not in a log line, not in an answer."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.json_schema import SkipJsonSchema

from notifications.domain.commands import SendSignInCode
from notifications.domain.messages import Channel
from notifications.entrypoints.deps import ServiceDep
from notifications.service_layer.ports import SendError
from service_kit.http import error_responses

router = APIRouter(tags=["sign-in codes"])

_sign_in_token = HTTPBearer(
    auto_error=False,
    scheme_name="signInToken",
    description="The orders service's token (NOTIFICATIONS_SIGN_IN_TOKEN).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_sign_in_token)]

# What the orders service sends: already normalised (E.164, a lower-case address). Addresses
# are those any mail server takes (RFC 5322 dot-atoms, ASCII, a domain of letters, digits and
# dashes); anything else is a 422, which the orders service answers like a refused recipient.
E164 = r"^\+[1-9][0-9]{6,14}$"
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
EMAIL = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}$"
_ONE_RECIPIENT: dict[str, JsonValue] = {
    "oneOf": [
        {"required": ["phone"], "not": {"required": ["email"]}},
        {"required": ["email"], "not": {"required": ["phone"]}},
    ],
    "examples": [{"phone": "+390612345678", "code": "042917", "expires_in_seconds": 600}],
}


class SignInCode(BaseModel):
    """A code to send to a phone number (SMS) or an email address: exactly one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_RECIPIENT)

    phone: Annotated[str, Field(pattern=E164)] | SkipJsonSchema[None] = None
    email: Annotated[str, Field(max_length=254, pattern=EMAIL)] | SkipJsonSchema[None] = None
    code: Annotated[str, Field(pattern=r"^[0-9]{4,10}$")]
    expires_in_seconds: int = Field(ge=1, le=86400, description="What the message says.")

    @model_validator(mode="after")
    def _one_recipient(self) -> SignInCode:
        for field in ("phone", "email"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} is not null: leave it out instead")
        if (self.phone is None) == (self.email is None):
            raise ValueError("give either phone or email")
        return self


class CodeSent(BaseModel):
    channel: Literal["sms", "email"]
    provider_id: str = Field(description="The provider's id for the message.")


async def _orders_service(service: ServiceDep, credentials: Credentials) -> None:
    """401 unless the bearer token is the configured one (and one is configured)."""
    expected = service.sign_in_token
    refusal = None
    if expected is None:
        refusal = "sign-in codes are not enabled here: NOTIFICATIONS_SIGN_IN_TOKEN is not set"
    elif credentials is None:
        refusal = "present the orders service's token as Authorization: Bearer <token>"
    elif not hmac.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        refusal = "this is not the orders service's token"
    if refusal is not None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, refusal, headers={"WWW-Authenticate": "Bearer"}
        )


@router.post(
    "/sign-in-codes",
    response_model=CodeSent,
    dependencies=[Depends(_orders_service)],
    responses=error_responses(
        401,
        413,
        _401="Not the orders service's token, or none is configured.",
        _422="The body is not acceptable, or the provider refused this recipient for good "
        "(not a mobile number, no such mailbox).",
        _503="The provider could not take the message now; nothing was sent.",
        examples={
            401: {"detail": "this is not the orders service's token"},
            503: {"detail": "the sms provider could not take the code now: HTTP 503: ..."},
        },
    ),
)
async def send_sign_in_code(body: SignInCode, service: ServiceDep) -> CodeSent:
    """The orders service: send a sign-in code now, by SMS to `phone` or by email to `email`."""
    channel = Channel.SMS if body.phone is not None else Channel.EMAIL
    recipient = body.phone if body.phone is not None else body.email
    assert recipient is not None
    command = SendSignInCode(channel, recipient, body.code, body.expires_in_seconds)
    try:
        provider_id = await service.commands.handle(command)
    except SendError as error:
        if error.retriable:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the {channel.value} provider could not take the code now: {error.reason}",
                headers={"Retry-After": "5"},
            ) from None
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the {channel.value} provider refused the recipient: {error.reason}",
        ) from None
    return CodeSent(channel="sms" if channel is Channel.SMS else "email", provider_id=provider_id)
