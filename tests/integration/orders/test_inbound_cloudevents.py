"""CloudEvents from outside over HTTP: a payment provider's payment.succeeded confirms the order,
once, whatever the content mode, and only for an authenticated sender: a bearer token, or a
signature over the timestamp, the event's id, source and type and the body that cannot be
replayed under another id or long after it was made."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from eventing.database import asyncpg_dsn
from orders.entrypoints import inbound_signatures
from orders.entrypoints.api import create_app
from orders.settings import OrdersSettings
from service_kit.auth import Role
from tests.support.infra import Infra
from tests.support.orders import OrdersApi
from tests.support.system import migrated_database

BEARER = "test-inbound-bearer-token-0123456789abcdef"
SECRET = "test-inbound-hmac-secret-0123456789abcdefgh"
RETIRED = "test-inbound-hmac-secret-retired-0123456789"
PAYMENT = "com.mariospizzeria.payment.succeeded.v1"
CONFIRMED = "com.mariospizzeria.order.confirmed.v1"
SOURCE = "https://payments.example.com/webhooks"


@contextlib.asynccontextmanager
async def running(infra: Infra, **settings: Any) -> AsyncIterator[OrdersApi]:
    """The orders API with inbound events configured (bearer token and HMAC secret)."""
    url = await migrated_database(infra, "orders")
    app = create_app(
        OrdersSettings(
            database_url=url,
            kafka_bootstrap_servers=infra.kafka_bootstrap,
            inbound_hmac_secret=SecretStr(SECRET),
            inbound_bearer_token=SecretStr(BEARER),
            **settings,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            yield OrdersApi(client, url)


@pytest.fixture
async def inbound_api(infra: Infra) -> AsyncIterator[OrdersApi]:
    async with running(infra) as api:
        yield api


@pytest.fixture
async def lenient_api(infra: Infra) -> AsyncIterator[OrdersApi]:
    """Also admitting the deprecated body-only signature, as one can for one release."""
    async with running(infra, inbound_accept_body_only_signature=True) as api:
        yield api


def payment(order_id: str, amount: str | float = "12.99", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "order_id": order_id,
        "amount": amount,
        "currency": "EUR",
        "provider_reference": "pay_" + uuid.uuid4().hex[:12],
        "paid_at": "2025-06-01T12:00:00Z",
    }
    data.update(overrides)
    return data


def binary(
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    event_type: str = PAYMENT,
    specversion: str = "1.0",
    auth: dict[str, str] | None = None,
    omit: tuple[str, ...] = (),
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode request (bearer-authenticated unless ``auth``)."""
    headers = {
        "ce-id": event_id or str(uuid.uuid4()),
        "ce-source": SOURCE,
        "ce-type": event_type,
        "ce-specversion": specversion,
        "ce-subject": str(data.get("order_id", "")),
        "ce-time": "2025-06-01T12:00:01Z",
        "content-type": "application/json",
    }
    for name in omit:
        del headers[name]
    headers.update({"Authorization": f"Bearer {BEARER}"} if auth is None else auth)
    return headers, json.dumps(data).encode()


def signature(
    body: bytes,
    event_id: str,
    source: str = SOURCE,
    event_type: str = PAYMENT,
    *,
    timestamp: int | None = None,
    secret: str | Iterable[str] = SECRET,
) -> dict[str, str]:
    """An X-Signature header made as a sender makes it, at ``timestamp`` (default: now)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    value = inbound_signatures.sign(secret, stamp, event_id, source, event_type, body)
    return {"X-Signature": value}


def signed_binary(
    data: dict[str, Any], *, event_id: str | None = None, **signing: Any
) -> tuple[dict[str, str], bytes]:
    """A binary-mode request signed (instead of the bearer token) over its ce-* attributes."""
    headers, body = binary(data, event_id=event_id, auth={})
    return {**headers, **signature(body, headers["ce-id"], **signing)}, body


def body_only(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The deprecated X-Signature: the HMAC of the body alone."""
    return {"X-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def structured(
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    timestamp: int | None = None,
    **attributes: Any,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a structured-mode request, signed with the HMAC secret."""
    event = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": SOURCE,
        "type": PAYMENT,
        "datacontenttype": "application/json",
        "data": data,
        **attributes,
    }
    sent = {k: v for k, v in event.items() if v is not None}
    body = json.dumps(sent).encode()
    # What the body says, an empty string for what it lacks (then refused as a bad event).
    signed = [value if isinstance(value := sent.get(name), str) else "" for name in _SIGNED]
    headers = {
        "content-type": "application/cloudevents+json; charset=utf-8",
        **signature(body, *signed, timestamp=timestamp),
    }
    return headers, body


_SIGNED = ("id", "source", "type")


async def send(api: OrdersApi, request: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = request
    return await api.client.post("/cloudevents", headers=headers, content=body)


async def read_order(api: OrdersApi, order_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/orders/{order_id}", headers=api.token(Role.MANAGER))
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def fetch(api: OrdersApi, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(asyncpg_dsn(api.database_url))
    try:
        return [dict(row) for row in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def confirmations(api: OrdersApi, order_id: str) -> list[dict[str, Any]]:
    rows = await fetch(
        api,
        "SELECT aggregate_version, payload FROM outbox WHERE event_type = $1"
        " AND aggregate_id = $2 ORDER BY event_id",
        CONFIRMED,
        order_id,
    )
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


async def inbound_rows(api: OrdersApi) -> list[dict[str, Any]]:
    return await fetch(api, "SELECT source, id, type, subject, outcome FROM inbound_events")


async def body_only_admissions(api: OrdersApi) -> float:
    metrics = (await api.client.get("/metrics")).text
    [line] = [
        line
        for line in metrics.splitlines()
        if line.startswith("orders_inbound_body_only_signatures_total ")
    ]
    return float(line.split()[1])


# ------------------------------------------------------------------------------- happy paths


async def test_binary_mode_with_bearer_token_confirms_the_order(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])
    event_id = str(uuid.uuid4())

    response = await send(inbound_api, binary(payment(order_id), event_id=event_id))

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    assert response.json()["outcome"] == "applied"
    order = await read_order(inbound_api, order_id)
    assert order["status"] == "confirmed"
    assert order["version"] == 2
    [confirmed] = await confirmations(inbound_api, order_id)
    assert confirmed["aggregate_version"] == 2
    assert confirmed["payload"]["confirmed_by"] == "payment"
    assert await inbound_rows(inbound_api) == [
        {
            "source": SOURCE,
            "id": event_id,
            "type": PAYMENT,
            "subject": order_id,
            "outcome": "applied",
        }
    ]


async def test_structured_mode_with_hmac_signature_confirms_the_order(
    inbound_api: OrdersApi,
) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])

    response = await send(inbound_api, structured(payment(order_id, amount=12.99)))

    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "outcome": "applied", "detail": "received"}
    assert (await read_order(inbound_api, order_id))["status"] == "confirmed"
    [confirmed] = await confirmations(inbound_api, order_id)
    assert confirmed["payload"]["confirmed_by"] == "payment"


async def test_binary_mode_signed_instead_of_bearer(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    response = await send(inbound_api, signed_binary(payment(str(placed["id"]))))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "confirmed"


async def test_binary_attributes_are_signed_as_the_event_carries_them(
    inbound_api: OrdersApi,
) -> None:
    """ce-* headers are percent-encoded on the wire; the signature covers the decoded value."""
    placed = await inbound_api.place()
    event_id = "pay/é 100%"
    headers, body = binary(payment(str(placed["id"])), auth={})
    headers["ce-id"] = "pay/%C3%A9%20100%25"

    encoded = await send(inbound_api, ({**headers, **signature(body, headers["ce-id"])}, body))
    assert encoded.status_code == 401, encoded.text
    assert "does not match" in encoded.json()["detail"]

    response = await send(inbound_api, ({**headers, **signature(body, event_id)}, body))
    assert response.status_code == 202, response.text
    assert [row["id"] for row in await inbound_rows(inbound_api)] == [event_id]


async def test_a_signature_with_the_retired_secret_beside_the_current_one_is_admitted(
    inbound_api: OrdersApi,
) -> None:
    """Rotation: the sender signs with both secrets until the receiver has the new one."""
    placed = await inbound_api.place()
    headers, body = structured(payment(str(placed["id"])))
    event_id = json.loads(body)["id"]
    both = signature(body, event_id, secret=[RETIRED, SECRET])
    assert both["X-Signature"].count("v1=") == 2

    response = await send(inbound_api, ({**headers, **both}, body))

    assert response.status_code == 202, response.text
    retired_only = signature(body, event_id, secret=RETIRED)
    refused = await send(inbound_api, ({**headers, **retired_only}, body))
    assert refused.status_code == 401
    assert "does not match" in refused.json()["detail"]


# ---------------------------------------------------------------------------- authentication


async def test_bad_signature_is_401_and_changes_nothing(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    headers, body = structured(payment(str(placed["id"])))
    tampered = body.replace(b'"12.99"', b'"0.01"')
    assert tampered != body
    event_id = json.loads(body)["id"]

    for request in (
        (headers, tampered),  # body changed after signing
        ({**headers, **signature(body, event_id, secret="not-the-secret")}, body),
        ({**headers, **signature(body, event_id, source="https://elsewhere.example.com")}, body),
        ({**headers, **signature(body, "another-id")}, body),
    ):
        response = await send(inbound_api, request)
        assert response.status_code == 401, response.text
        assert response.json()["detail"].startswith("the signature does not match")
        assert response.headers["WWW-Authenticate"] == "Bearer"

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []


async def test_a_captured_binary_request_replayed_under_a_new_id_is_refused(
    inbound_api: OrdersApi,
) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])
    captured = signed_binary(payment(order_id))
    headers, body = captured

    first = await send(inbound_api, captured)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted"
    # replayed as it was, it is the same event: a duplicate, with no second effect
    again = await send(inbound_api, captured)
    assert again.status_code == 202
    assert again.json()["status"] == "duplicate"

    # under a new id (or source), which de-duplication would take for a new event, it is refused
    for name, value in (("ce-id", str(uuid.uuid4())), ("ce-source", SOURCE + "/other")):
        replayed = await send(inbound_api, ({**headers, name: value}, body))
        assert replayed.status_code == 401, (name, replayed.text)
        assert replayed.json()["detail"].startswith("the signature does not match")

    assert len(await inbound_rows(inbound_api)) == 1
    assert len(await confirmations(inbound_api, order_id)) == 1
    assert (await read_order(inbound_api, order_id))["version"] == 2


async def test_stale_and_future_timestamps_are_refused(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])
    data = payment(order_id)
    now = int(time.time())

    for timestamp in (now - 3600, now + 3600, 0):
        for request in (
            signed_binary(data, timestamp=timestamp),
            structured(data, timestamp=timestamp),
        ):
            response = await send(inbound_api, request)
            assert response.status_code == 401, response.text
            assert response.json()["detail"].startswith(
                "signature timestamp outside the tolerance window (±300 s"
            )
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await read_order(inbound_api, order_id))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []

    # well inside the window either way, the clocks may differ
    late = await send(inbound_api, signed_binary(data, timestamp=now - 120))
    assert late.status_code == 202, late.text
    early = await send(inbound_api, structured(data, timestamp=now + 120))
    assert early.status_code == 202, early.text
    assert early.json()["outcome"] == "ignored: order is already confirmed"


async def test_the_tolerance_is_a_setting(infra: Infra) -> None:
    async with running(infra, inbound_signature_tolerance_seconds=3600) as api:
        placed = await api.place()
        request = signed_binary(payment(str(placed["id"])), timestamp=int(time.time()) - 1800)
        response = await send(api, request)
        assert response.status_code == 202, response.text
        stale = signed_binary(payment(str(placed["id"])), timestamp=int(time.time()) - 7200)
        refused = await send(api, stale)
        assert refused.status_code == 401
        assert "(±3600 s" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "is not key=value"),
        ("v1=" + "0" * 64, "no t="),
        ("t=1718000000", "no v1="),
        ("t=yesterday,v1=" + "0" * 64, "Unix time in seconds"),
        ("t=1718000000,v1=zz", "64 hex digits"),
        ("t=1718000000,t=1718000001,v1=" + "0" * 64, "t= is repeated"),
        ("hmac-sha256 " + "0" * 64, "is not key=value"),
        (b"t=\xff\xfe,v1=" + b"0" * 64, "Unix time in seconds"),
    ],
)
async def test_malformed_signature_headers_are_401_saying_why(
    inbound_api: OrdersApi, value: str | bytes, why: str
) -> None:
    placed = await inbound_api.place()
    headers, body = binary(payment(str(placed["id"])), auth={})
    raw = [(name.encode(), text.encode()) for name, text in headers.items()]
    raw.append((b"X-Signature", value if isinstance(value, bytes) else value.encode()))

    response = await inbound_api.client.post("/cloudevents", headers=raw, content=body)

    assert response.status_code == 401, response.text
    detail = response.json()["detail"]
    assert detail.startswith("malformed X-Signature"), detail
    assert why in detail
    assert "expected t=<unix seconds>,v1=<hex HMAC-SHA256>" in detail
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"


async def test_a_repeated_signature_header_is_401(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    headers, body = signed_binary(payment(str(placed["id"])))
    raw = [(name.encode(), text.encode()) for name, text in headers.items()]
    raw.append((b"X-Signature", headers["X-Signature"].encode()))

    response = await inbound_api.client.post("/cloudevents", headers=raw, content=body)

    assert response.status_code == 401
    assert "X-Signature is repeated" in response.json()["detail"]
    assert await inbound_rows(inbound_api) == []


async def test_the_body_only_signature_is_refused_by_default(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    data = payment(str(placed["id"]))
    before = await body_only_admissions(inbound_api)

    binary_headers, binary_body = binary(data, auth={})
    structured_headers, structured_body = structured(data)
    for request in (
        ({**binary_headers, **body_only(binary_body)}, binary_body),
        ({**structured_headers, **body_only(structured_body)}, structured_body),
    ):
        response = await send(inbound_api, request)
        assert response.status_code == 401, response.text
        assert response.json()["detail"] == (
            "the body-only signature (X-Signature: sha256=<hex>) is no longer accepted; "
            "sign with X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>"
        )

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []
    assert await body_only_admissions(inbound_api) == before


async def test_the_body_only_signature_is_admitted_when_allowed_with_a_warning(
    lenient_api: OrdersApi, caplog: pytest.LogCaptureFixture
) -> None:
    placed = await lenient_api.place()
    order_id = str(placed["id"])
    sender = f"{SOURCE}/{uuid.uuid4()}"  # one this process has not warned about yet
    headers, body = binary(payment(order_id), auth={})
    headers["ce-source"] = sender
    before = await body_only_admissions(lenient_api)

    with caplog.at_level(logging.WARNING, logger="orders.inbound"):
        response = await send(lenient_api, ({**headers, **body_only(body)}, body))

    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "applied"
    assert await body_only_admissions(lenient_api) == before + 1
    [warning] = [r for r in caplog.records if "deprecated body-only" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert sender in warning.getMessage()
    assert SECRET not in caplog.text
    assert body_only(body)["X-Signature"].removeprefix("sha256=") not in caplog.text

    # Why it goes: the same captured request under a new ce-id passes for a new event.
    replayed = await send(
        lenient_api, ({**headers, "ce-id": str(uuid.uuid4()), **body_only(body)}, body)
    )
    assert replayed.status_code == 202
    assert replayed.json()["status"] == "accepted"
    assert len(await inbound_rows(lenient_api)) == 2
    assert await body_only_admissions(lenient_api) == before + 2

    # a wrong body-only signature is still refused, and the v1 signature still works
    wrong = await send(lenient_api, ({**headers, **body_only(body, "not-the-secret")}, body))
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "the signature does not match"
    current = await send(lenient_api, signed_binary(payment(order_id)))
    assert current.status_code == 202, current.text
    assert await body_only_admissions(lenient_api) == before + 2


async def test_missing_or_wrong_credentials_are_401(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    data = payment(str(placed["id"]))

    missing = await send(inbound_api, binary(data, auth={}))
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["detail"]

    wrong = await send(inbound_api, binary(data, auth={"Authorization": "Bearer guess"}))
    assert wrong.status_code == 401
    # a staff JWT is not an inbound credential
    jwt = await send(inbound_api, binary(data, auth=inbound_api.token(Role.MANAGER)))
    assert jwt.status_code == 401

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []


async def test_without_configured_credentials_everything_is_refused(
    orders_api: OrdersApi,
) -> None:
    placed = await orders_api.place()
    response = await send(orders_api, binary(payment(str(placed["id"]))))
    assert response.status_code == 401
    assert response.json()["detail"] == "inbound events are not configured"
    assert (await read_order(orders_api, str(placed["id"])))["status"] == "pending"


# ---------------------------------------------------------------------------- malformed events


async def test_missing_event_id_is_400_in_both_modes(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    data = payment(str(placed["id"]))

    no_header = await send(inbound_api, binary(data, omit=("ce-id",)))
    assert no_header.status_code == 400
    assert "ce-id" in no_header.json()["detail"]
    empty = await send(inbound_api, binary(data, event_id=" "))
    assert empty.status_code == 400

    no_attribute = await send(inbound_api, structured(data, event_id=None, id=None))
    assert no_attribute.status_code == 400
    assert "id" in no_attribute.json()["detail"]

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []


async def test_wrong_or_missing_specversion_is_400(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    data = payment(str(placed["id"]))

    old = await send(inbound_api, binary(data, specversion="0.3"))
    assert old.status_code == 400
    assert "specversion" in old.json()["detail"] and "0.3" in old.json()["detail"]
    missing = await send(inbound_api, binary(data, omit=("ce-specversion",)))
    assert missing.status_code == 400
    assert "ce-specversion" in missing.json()["detail"]
    future = await send(inbound_api, structured(data, specversion="2.0"))
    assert future.status_code == 400
    assert "2.0" in future.json()["detail"]
    no_version = await send(inbound_api, structured(data, specversion=None))
    assert no_version.status_code == 400

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"


async def test_malformed_requests_are_400_or_415(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    data = payment(str(placed["id"]))
    bearer = {"Authorization": f"Bearer {BEARER}"}

    headers, _ = binary(data)
    not_json = await send(inbound_api, (headers, b"{not json"))
    assert not_json.status_code == 400
    assert "JSON object" in not_json.json()["detail"]

    text = await send(inbound_api, ({**headers, "content-type": "text/plain"}, b"hello"))
    assert text.status_code == 415

    bad_time = await send(
        inbound_api, ({**headers, "ce-time": "yesterday"}, json.dumps(data).encode())
    )
    assert bad_time.status_code == 400

    no_ce = await send(
        inbound_api, ({**bearer, "content-type": "application/json"}, json.dumps(data).encode())
    )
    assert no_ce.status_code == 400
    assert "not a CloudEvent" in no_ce.json()["detail"]

    array = await send(
        inbound_api, ({**bearer, "content-type": "application/cloudevents+json"}, b"[1, 2]")
    )
    assert array.status_code == 400

    batch = await send(
        inbound_api, ({**bearer, "content-type": "application/cloudevents-batch+json"}, b"[]")
    )
    assert batch.status_code == 415

    nul = await send(inbound_api, binary({**data, "provider_reference": "pay\u0000"}))
    assert nul.status_code == 400
    assert "NUL" in nul.json()["detail"]
    long_id = await send(inbound_api, binary(data, event_id="x" * 600))
    assert long_id.status_code == 400
    assert "longer than" in long_id.json()["detail"]
    huge = await send(inbound_api, binary({**data, "padding": "x" * 70_000}))
    assert huge.status_code == 413

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []


async def test_unknown_type_is_422_naming_it(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    data = payment(str(placed["id"]))

    unknown = await send(inbound_api, binary(data, event_type="com.example.refund.issued.v1"))
    assert unknown.status_code == 422
    assert "com.example.refund.issued.v1" in unknown.json()["detail"]
    assert PAYMENT in unknown.json()["detail"]  # says what is accepted

    # our own outbound types are never taken from outside
    ours = await send(inbound_api, binary(data, event_type="com.mariospizzeria.order.confirmed.v1"))
    assert ours.status_code == 422
    assert "com.mariospizzeria.order.confirmed.v1" in ours.json()["detail"]

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []


async def test_invalid_data_is_422_with_field_messages(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    data = payment(str(placed["id"]), currency="USD", paid_at="2025-06-01T12:00:00")
    del data["amount"]

    response = await send(inbound_api, binary(data))

    assert response.status_code == 422
    errors = {tuple(error["loc"]): error["msg"] for error in response.json()["detail"]}
    assert set(errors) == {("data", "amount"), ("data", "currency"), ("data", "paid_at")}
    assert "required" in errors[("data", "amount")].lower()
    assert "EUR" in errors[("data", "currency")]
    assert "timezone" in errors[("data", "paid_at")].lower()

    negative = await send(inbound_api, structured(payment(str(placed["id"]), amount="-1")))
    assert negative.status_code == 422
    assert [e["loc"] for e in negative.json()["detail"]] == [["data", "amount"]]

    assert (await read_order(inbound_api, str(placed["id"])))["status"] == "pending"
    assert await inbound_rows(inbound_api) == []


# -------------------------------------------------------------------- exactly once, outcomes


async def test_duplicate_delivery_is_202_duplicate_without_a_second_effect(
    inbound_api: OrdersApi,
) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])
    event_id = str(uuid.uuid4())
    data = payment(order_id)

    first = await send(inbound_api, binary(data, event_id=event_id))
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    version = (await read_order(inbound_api, order_id))["version"]

    # the same event again, in the other mode and authentication: still the same (source, id)
    again = await send(inbound_api, structured(data, event_id=event_id))
    assert again.status_code == 202
    assert again.json()["status"] == "duplicate"
    assert again.json()["outcome"] == "applied"
    assert "already received" in again.json()["detail"]

    order = await read_order(inbound_api, order_id)
    assert order["version"] == version == 2
    assert order["status"] == "confirmed"
    assert len(await confirmations(inbound_api, order_id)) == 1
    assert len(await inbound_rows(inbound_api)) == 1

    # same id from another source is another event: received, but the order is confirmed already
    other = binary(data, event_id=event_id)
    other[0]["ce-source"] = "https://other-provider.example.com"
    elsewhere = await send(inbound_api, other)
    assert elsewhere.status_code == 202
    assert elsewhere.json()["status"] == "accepted"
    assert elsewhere.json()["outcome"] == "ignored: order is already confirmed"
    assert (await read_order(inbound_api, order_id))["version"] == 2


async def test_concurrent_duplicate_deliveries_apply_once(inbound_api: OrdersApi) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])
    request = binary(payment(order_id))

    responses = await asyncio.gather(*(send(inbound_api, request) for _ in range(10)))

    assert [r.status_code for r in responses] == [202] * 10
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["accepted"] + ["duplicate"] * 9
    assert {r.json()["outcome"] for r in responses} == {"applied"}
    assert (await read_order(inbound_api, order_id))["version"] == 2
    assert len(await confirmations(inbound_api, order_id)) == 1


async def test_amount_mismatch_is_recorded_as_rejected_and_does_not_confirm(
    inbound_api: OrdersApi,
) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])
    request = binary(payment(order_id, amount="10.00"))

    response = await send(inbound_api, request)

    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert response.json()["outcome"] == (
        "rejected: amount 10.00 EUR does not match order total 12.99 EUR"
    )
    order = await read_order(inbound_api, order_id)
    assert order["status"] == "pending"
    assert order["version"] == 1
    assert await confirmations(inbound_api, order_id) == []
    [row] = await inbound_rows(inbound_api)
    assert row["outcome"].startswith("rejected: amount 10.00 EUR")

    redelivered = await send(inbound_api, request)
    assert redelivered.json()["status"] == "duplicate"
    assert redelivered.json()["outcome"].startswith("rejected:")
    # the amount is compared as a number: 12.990 is the total
    exact = await send(inbound_api, binary(payment(order_id, amount="12.990")))
    assert exact.json()["outcome"] == "applied"


async def test_event_for_a_cancelled_order_is_recorded_as_ignored(
    inbound_api: OrdersApi,
) -> None:
    placed = await inbound_api.place()
    order_id = str(placed["id"])
    cancelled = await inbound_api.client.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "changed my mind"},
        headers={"X-Tracking-Token": str(placed["tracking_token"])},
    )
    assert cancelled.status_code == 200

    response = await send(inbound_api, binary(payment(order_id)))

    assert response.status_code == 202
    assert response.json() == {
        "status": "accepted",
        "outcome": "ignored: order is cancelled",
        "detail": "received",
    }
    order = await read_order(inbound_api, order_id)
    assert order["status"] == "cancelled"
    assert order["version"] == 2
    assert await confirmations(inbound_api, order_id) == []
    [row] = await inbound_rows(inbound_api)
    assert row["outcome"] == "ignored: order is cancelled"


async def test_event_for_an_unknown_order_is_recorded_as_ignored(inbound_api: OrdersApi) -> None:
    response = await send(inbound_api, binary(payment("no-such-order")))
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored: order 'no-such-order' is unknown"
    [row] = await inbound_rows(inbound_api)
    assert row["outcome"] == "ignored: order 'no-such-order' is unknown"
