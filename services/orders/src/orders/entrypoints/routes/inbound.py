"""CloudEvents from other systems over HTTP (CloudEvents HTTP protocol binding 1.0).

Both content modes are accepted, chosen by the Content-Type as the binding prescribes:

* **structured** (``application/cloudevents+json``): the body is the whole event as JSON;
* **binary** (any other type, with ``ce-*`` headers): ``ce-id``, ``ce-source``, ``ce-type`` and
  ``ce-specversion`` carry the attributes and the body is the data (``application/json``).

The sender authenticates with ``Authorization: Bearer <token>`` or with ``X-Signature:
t=<unix seconds>,v1=<hex>`` under the shared secret (``ORDERS_INBOUND_BEARER_TOKEN`` /
``ORDERS_INBOUND_HMAC_SECRET``). The signature covers the timestamp, the event's id, source and
type, and the raw body (``entrypoints.inbound_signatures`` defines the form), and is admitted
within ``ORDERS_INBOUND_SIGNATURE_TOLERANCE_SECONDS`` of our clock.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from typing import Any, Literal
from urllib.parse import unquote

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers

from orders.adapters import metrics
from orders.domain.commands import ReceiveInboundEvent
from orders.entrypoints import inbound_signatures
from orders.entrypoints.deps import ServiceDep
from orders.entrypoints.inbound_signatures import SignatureRefused
from orders.service_layer.commands import UnknownEventType
from orders.settings import OrdersSettings
from service_kit.http import error_responses
from service_kit.limits import RateLimit, RateSpec

log = logging.getLogger("orders.inbound")
router = APIRouter(tags=["cloudevents"])

SPEC_VERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SIGNATURE_HEADER = "x-signature"
# Together well under PostgreSQL's limit for one entry of the (source, id) key's index.
MAX_ID_BYTES = 512
MAX_SOURCE_BYTES = 1024
_REQUIRED = ("id", "source", "type", "specversion")
_JSON_MEDIA = re.compile(r"^application/(?:[a-z0-9.+-]+\+)?json$")
_FORMAT = JSONFormat()
_SIGNED = ("id", "source", "type")
# One deprecation warning per sender (event source) a minute: enough to find who still sends
# the old signature, without a line per request. Bounded, as every per-key limit here is.
_BODY_ONLY_NOTICES = RateLimit(RateSpec.parse("1/minute"), max_keys=1024)

Mode = Literal["structured", "binary", "batch", "none"]
Attributes = tuple[str, str, str]  # (id, source, type), as a signature covers them


class InboundReceipt(BaseModel):
    status: Literal["accepted", "duplicate"] = Field(
        description="accepted: received now; duplicate: this (source, id) was received before "
        "and nothing was done again."
    )
    outcome: str = Field(
        description="What receiving the event did: applied, or ignored/rejected with why.",
        examples=["applied", "ignored: order is cancelled"],
    )
    detail: str


def _bad_request(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, reason)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


def _authenticate(headers: Headers, body: bytes, settings: OrdersSettings) -> Attributes | None:
    """Admit a valid bearer token or a valid signature; 401 with the reason otherwise.

    Returns the (id, source, type) a v1 signature covered, None for the other credentials.
    """
    token, secret = settings.inbound_bearer_token, settings.inbound_hmac_secret
    if token is None and secret is None:
        raise _unauthorized("inbound events are not configured")
    authorization = headers.get("authorization", "")
    scheme, _, presented = authorization.partition(" ")
    signatures = headers.getlist(SIGNATURE_HEADER)
    if (
        token is not None
        and scheme.lower() == "bearer"
        and presented.strip()
        and hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())
    ):
        return None
    if secret is not None and signatures:
        if len(signatures) > 1:
            raise _unauthorized("X-Signature is repeated; send one, with a v1= per secret")
        return _verify_signature(signatures[0], headers, body, settings, secret.get_secret_value())
    if authorization or signatures:
        raise _unauthorized("invalid bearer token or signature")
    raise _unauthorized(
        "present Authorization: Bearer <token> or X-Signature: " + inbound_signatures.EXPECTED_FORM
    )


def _verify_signature(
    signature: str, headers: Headers, body: bytes, settings: OrdersSettings, secret: str
) -> Attributes | None:
    if inbound_signatures.is_body_only(signature):
        if not settings.inbound_accept_body_only_signature:
            raise _unauthorized(
                "the body-only signature (X-Signature: sha256=<hex>) is no longer accepted; "
                f"sign with X-Signature: {inbound_signatures.EXPECTED_FORM}"
            )
        if not inbound_signatures.body_only_matches(signature, secret, body):
            raise _unauthorized("the signature does not match")
        metrics.body_only_signature_admitted()
        source = _signed_attributes(headers, body)[1]
        if _BODY_ONLY_NOTICES.take(source) is None:
            log.warning(
                "inbound event from %r signed with the deprecated body-only X-Signature: "
                "sha256=<hex>; the sender should move to t=<unix seconds>,v1=<hex> before "
                "ORDERS_INBOUND_ACCEPT_BODY_ONLY_SIGNATURE goes",
                source,
            )
        return None
    attributes = _signed_attributes(headers, body)
    try:
        inbound_signatures.verify(
            signature,
            secret,
            *attributes,
            body,
            now=time.time(),
            tolerance_seconds=settings.inbound_signature_tolerance_seconds,
        )
    except SignatureRefused as error:
        raise _unauthorized(str(error)) from None
    return attributes


def _mode(headers: Headers) -> Mode:
    """The content mode, as the HTTP binding tells it from the Content-Type and headers."""
    media = _media_type(headers)
    if media == BATCH:
        return "batch"
    if media == STRUCTURED:
        return "structured"
    if any(name.lower().startswith(ce_http.CE_PREFIX) for name in headers):
        return "binary"
    return "none"


def _signed_attributes(headers: Headers, body: bytes) -> Attributes:
    """The id, source and type a signature covers, read as ``_parse`` will read them; empty
    where absent or unreadable (such a request is refused by ``_parse`` once authenticated)."""
    mode = _mode(headers)
    if mode == "binary":
        # Percent-decoded, as the SDK decodes ce-* headers: the values the event will carry.
        ce_id, ce_source, ce_type = (unquote(headers.get(f"ce-{name}", "")) for name in _SIGNED)
        return ce_id, ce_source, ce_type
    if mode == "structured":
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return "", "", ""
        if isinstance(document, dict):
            event_id, source, event_type = (
                value if isinstance(value := document.get(name), str) else "" for name in _SIGNED
            )
            return event_id, source, event_type
    # A batch (refused for now) would be signed as its body alone, every field empty.
    return "", "", ""


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _binary_headers(request: Request) -> dict[str, str]:
    """The ce-* headers and the Content-Type, refusing a repeated ce-* header."""
    seen: dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        name = raw_name.decode("latin-1").lower()
        if not name.startswith(ce_http.CE_PREFIX) and name != "content-type":
            continue
        if name in seen:
            raise _bad_request(f"header {name} is repeated")
        seen[name] = raw_value.decode("latin-1")
    missing = [f"ce-{name}" for name in _REQUIRED if not seen.get(f"ce-{name}", "").strip()]
    if missing:
        # The SDK would invent an id; an event without one cannot be de-duplicated.
        raise _bad_request(f"missing required header(s): {', '.join(missing)}")
    if seen["ce-specversion"].strip() != SPEC_VERSION:
        raise _bad_request(
            f"unsupported ce-specversion {seen['ce-specversion']!r}; expected {SPEC_VERSION!r}"
        )
    if not _JSON_MEDIA.match(_media_type(request.headers)):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "in binary mode the body is the event data and must be application/json",
        )
    return seen


def _check_structured(body: bytes) -> None:
    """What the SDK would paper over: a missing id or specversion (it invents both)."""
    try:
        document = json.loads(body)
    except ValueError as error:
        raise _bad_request(f"the structured event is not JSON: {error}") from error
    except RecursionError as error:
        raise _bad_request("the structured event nests deeper than JSON decoding allows") from error
    if not isinstance(document, dict):
        raise _bad_request("the structured event is not a JSON object")
    missing = [
        name
        for name in _REQUIRED
        if not isinstance(document.get(name), str) or not document[name].strip()
    ]
    if missing:
        raise _bad_request(f"missing required attribute(s): {', '.join(missing)}")
    if document["specversion"] != SPEC_VERSION:
        raise _bad_request(
            f"unsupported specversion {document['specversion']!r}; expected {SPEC_VERSION!r}"
        )


def _parse(request: Request, body: bytes) -> ReceiveInboundEvent:
    mode = _mode(request.headers)
    if mode == "batch":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "batched mode is not supported; send one event"
        )
    try:
        if mode == "structured":
            _check_structured(body)
            message = ce_http.HTTPMessage(headers={"content-type": STRUCTURED}, body=body)
            event = ce_http.from_structured(message, _FORMAT, CloudEvent)
        elif mode == "binary":
            message = ce_http.HTTPMessage(headers=_binary_headers(request), body=body)
            event = ce_http.from_binary(message, _FORMAT, CloudEvent)
        else:
            raise _bad_request(
                f"not a CloudEvent: send ce-* headers (binary mode) or Content-Type {STRUCTURED}"
            )
    except BaseCloudEventException as error:
        raise _bad_request(f"invalid CloudEvent: {error}") from error
    except (ValueError, TypeError, OverflowError) as error:  # e.g. an unparsable ce-time
        raise _bad_request(f"malformed CloudEvent: {error}") from error
    except RecursionError as error:
        raise _bad_request("the event nests deeper than JSON decoding allows") from error
    data = event.get_data()
    if not isinstance(data, dict):
        raise _bad_request("the event data must be a JSON object (datacontenttype JSON)")
    received = ReceiveInboundEvent(
        source=event.get_source(),
        id=event.get_id(),
        type=event.get_type(),
        subject=event.get_subject(),
        data=data,
    )
    _check_storable(received)
    return received


def _check_storable(event: ReceiveInboundEvent) -> None:
    """Refuse what PostgreSQL could not store: an over-long key (its index has a size limit),
    NUL characters or unpaired surrogates (JSON allows both, text columns do not)."""
    for name, value, limit in (
        ("id", event.id, MAX_ID_BYTES),
        ("source", event.source, MAX_SOURCE_BYTES),
    ):
        if len(value.encode("utf-8", "surrogatepass")) > limit:
            raise _bad_request(f"the event {name} is longer than {limit} bytes")
    if not _storable([event.id, event.source, event.type, event.subject, event.data]):
        raise _bad_request("the event contains a NUL character or invalid Unicode")


def _storable(value: object) -> bool:
    # Iterative: the body's nesting, however deep, costs no stack.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return False
            if "\x00" in item:
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _field_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["data", *problem["loc"]], "msg": problem["msg"], "type": problem["type"]}
        for problem in error.errors(include_url=False, include_input=False)
    ]


_HEADER_DOCS = [
    {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, **extra}
    for name, extra in (
        ("ce-id", {"description": "Binary mode: event id, unique per source."}),
        ("ce-source", {"description": "Binary mode: the sending system (URI-reference)."}),
        ("ce-type", {"description": "Binary mode: com.mariospizzeria.payment.succeeded.v1"}),
        ("ce-specversion", {"description": "Binary mode: 1.0"}),
    )
]
# Declared as the operation's security (either one), so the document says how senders
# authenticate; ``_authenticate`` checks them against the settings.
_SECURITY = [
    Depends(
        HTTPBearer(
            auto_error=False,
            scheme_name="inboundBearer",
            description="ORDERS_INBOUND_BEARER_TOKEN, shared with the sending system.",
        )
    ),
    Depends(
        APIKeyHeader(
            name="X-Signature",
            auto_error=False,
            scheme_name="eventSignature",
            description="t=<unix seconds>,v1=<hex HMAC-SHA256 under ORDERS_INBOUND_HMAC_SECRET "
            "of v1:<t>:<n>:<id>:<n>:<source>:<n>:<type>:<body>>, each <n> the UTF-8 byte length "
            "of the field after it; within ORDERS_INBOUND_SIGNATURE_TOLERANCE_SECONDS of now.",
        )
    ),
]


@router.post(
    "/cloudevents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InboundReceipt,
    dependencies=_SECURITY,
    responses=error_responses(
        400,
        401,
        413,
        415,
        422,
        _400="Not a valid CloudEvent 1.0 (missing id, wrong specversion...).",
        _401="No valid bearer token or signature (mismatch, stale or malformed), with why.",
        _415="Unsupported content type (binary data must be JSON).",
        _422="Unknown event type, or data that does not fit its schema.",
    ),
    openapi_extra={
        "parameters": _HEADER_DOCS,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "description": "Binary mode: the event data."}
                },
                STRUCTURED: {
                    "schema": {
                        "type": "object",
                        "required": list(_REQUIRED),
                        "description": "Structured mode: the whole event.",
                    }
                },
            },
        },
    },
)
async def receive_cloudevent(request: Request, service: ServiceDep) -> InboundReceipt:
    """Receive a CloudEvent from another system, e.g. a payment provider's payment.succeeded.

    Answered 202 once the event is durably recorded together with its effect (a matching
    payment confirms the pending order). Redelivering the same (source, id) is answered 202
    with status "duplicate" and has no further effect. Outcomes that are not the sender's
    fault (unknown or cancelled order, amount not matching) are recorded and reported in
    ``outcome``; retrying them does not help.
    """
    settings = service.settings
    if not isinstance(settings, OrdersSettings):
        raise RuntimeError("the orders service was built without OrdersSettings")
    body = await request.body()  # at most <SERVICE>_HTTP_MAX_BODY_BYTES (service_kit.http)
    signed = _authenticate(request.headers, body, settings)
    event = _parse(request, body)
    # _signed_attributes reads the event as _parse does; should they ever differ, the key the
    # event is de-duplicated by would not be the one signed.
    if signed is not None and signed != (event.id, event.source, event.type):
        raise _unauthorized("the signature does not cover this event's id, source and type")
    try:
        receipt = await service.commands.handle(event)
    except UnknownEventType as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    except ValidationError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _field_errors(error)) from error
    if receipt.duplicate:
        return InboundReceipt(
            status="duplicate",
            outcome=receipt.outcome,
            detail=f"event {event.id!r} from {event.source!r} was already received; "
            "nothing was done again",
        )
    return InboundReceipt(status="accepted", outcome=receipt.outcome, detail="received")
