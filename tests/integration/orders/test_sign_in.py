"""Signing in with a one-time code: the code reaches the phone or the mailbox (through the
notifications service and the sinks), is traded once for a customer token, and is refused when
wrong, expired, used, tried too often, or asked for too often. Nobody learns from the answers
whether a phone number or an email address is a customer's."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from eventing.database import asyncpg_dsn
from service_kit.auth import AuthSettings, Role, audience_of
from tests.support.customers import Person, codes_received, new_code
from tests.support.infra import Infra
from tests.support.notifications import Notifications
from tests.support.orders import OrdersApi, SignedInApi, orders_app
from tests.support.processes import free_port
from tests.support.system import SIGN_IN_TOKEN


async def rows(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    dsn = asyncpg_dsn(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def every_table_as_text(database_url: str) -> str:
    tables = await rows(
        database_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    dumped = []
    for table in tables:
        for row in await rows(database_url, f'SELECT * FROM "{table["table_name"]}"'):
            dumped.append(json.dumps(dict(row), default=str))
    return "\n".join(dumped)


async def trade(api: OrdersApi, contact: dict[str, str], code: str, **extra: Any) -> httpx.Response:
    return await api.client.post(
        "/customers/sign-in/token", json={**contact, "code": code, **extra}
    )


def another(code: str) -> str:
    """A code that is not ``code``."""
    return f"{(int(code) + 1) % 10**6:06d}"


def refusal(response: httpx.Response, reason: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["reason"] == reason, body
    assert "customer_id" not in body and "access_token" not in body
    return body


@pytest.mark.parametrize("by", ["phone", "email"])
async def test_a_code_signs_up_a_new_customer_then_signs_them_in(
    customers_api: OrdersApi,
    code_notifications: Notifications,
    caplog: pytest.LogCaptureFixture,
    by: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    person = Person.unique()
    contact = person.contact(by)
    code = await customers_api.code(contact)
    assert re.fullmatch(r"\d{6}", code)

    first = await trade(customers_api, contact, code, name=person.name)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["new_customer"] is True
    assert answer["token_type"] == "bearer"
    assert answer["expires_in"] == 3600
    claims = jwt.decode(
        answer["access_token"],
        AuthSettings().jwt_secret.get_secret_value(),
        algorithms=["HS256"],
        audience=audience_of("orders"),
    )
    assert claims["sub"] == answer["customer_id"]
    assert claims["roles"] == ["customer"]
    assert sorted(claims["aud"]) == [audience_of("notifications"), audience_of("orders")]
    assert claims["exp"] - claims["iat"] == 3600

    me = await customers_api.client.get(
        "/customers/me", headers={"Authorization": f"Bearer {answer['access_token']}"}
    )
    assert me.status_code == 200, me.text
    profile = me.json()
    assert (profile["id"], profile["name"], profile["guest"]) == (
        answer["customer_id"],
        person.name,
        False,
    )
    assert profile[by] == (person.e164 if by == "phone" else person.email)

    # Signing in again is the same customer; a name given now changes nothing.
    again_id, _ = await customers_api.sign_in(contact, name="Someone Else")
    assert again_id == answer["customer_id"]
    manager = customers_api.token(Role.MANAGER)
    stored = await customers_api.client.get(f"/customers/{again_id}", headers=manager)
    assert stored.json()["name"] == person.name

    # The codes are nowhere in clear: not in any table of orders or notifications, not in a log
    # line of either (the sinks, standing for the providers, got them).
    assert customers_api.sinks is not None
    sent = codes_received(customers_api.sinks, contact)
    assert len(sent) == 2
    orders_tables = await every_table_as_text(customers_api.database_url)
    notifications_tables = await every_table_as_text(code_notifications.url)
    assert code_notifications.process is not None
    # The SMTP sink in this process stands for a provider: its own log is the provider's.
    ours = [record.getMessage() for record in caplog.records if not record.name.startswith("mail")]
    logs = "\n".join(ours) + code_notifications.process.log_path.read_text(errors="replace")
    for sent_code in sent:
        # Not inside a longer number, nor the fraction of a time stamp.
        alone = re.compile(rf"(?<![\d.:]){sent_code}(?!\d)")
        assert not alone.search(orders_tables)
        assert not alone.search(notifications_tables)
        assert not alone.search(logs)
    [code_row] = await rows(customers_api.database_url, "SELECT * FROM sign_in_codes")
    assert person.e164 not in str(dict(code_row)) and person.email not in str(dict(code_row))


async def test_the_answer_is_the_same_for_a_customer_and_a_stranger(
    customers_api: OrdersApi,
) -> None:
    customer, stranger = Person.unique(), Person.unique()
    await customers_api.sign_in(customer.contact("phone"), name=customer.name)
    answers = []
    for person in (customer, stranger):
        for by in ("phone", "email"):
            contact = person.contact(by)
            answered = await customers_api.client.post("/customers/sign-in/code", json=contact)
            assert answered.status_code == 202, answered.text
            answers.append((by, answered.json(), sorted(answered.headers.keys())))
    by_kind: dict[str, list[Any]] = {}
    for by, body, headers in answers:
        by_kind.setdefault(by, []).append((body, headers))
    for same in by_kind.values():
        assert same[0] == same[1], same
    # Both got their code: sending does not depend on who is a customer.
    assert customers_api.sinks is not None
    for person in (customer, stranger):
        await new_code(customers_api.sinks, person.contact("email"), before=0)


async def test_a_wrong_code_counts_and_the_last_wrong_try_kills_the_code(
    signing_in: SignedInApi,
) -> None:
    async with signing_in(sign_in_code_max_attempts=3) as api:
        contact = Person.unique().contact("phone")
        code = await api.code(contact)
        lefts = [
            refusal(await trade(api, contact, another(code)), "wrong")["attempts_left"]
            for _ in range(3)
        ]
        assert lefts == [2, 1, 0]
        # Dead: the right code is refused from now on, and nobody was signed in.
        dead = refusal(await trade(api, contact, code), "spent")
        assert "ask for a new one" in dead["detail"]
        assert await rows(api.database_url, "SELECT * FROM customers") == []
        # A new code works.
        assert (await trade(api, contact, await api.code(contact))).status_code == 200


async def test_a_code_is_good_once_and_only_the_latest_one_counts(
    customers_api: OrdersApi,
) -> None:
    contact = Person.unique().contact("email")
    older = await customers_api.code(contact)
    newer = await customers_api.code(contact)
    if older != newer:  # asking again replaced the first code
        refusal(await trade(customers_api, contact, older), "wrong")
    used = await trade(customers_api, contact, newer)
    assert used.status_code == 200, used.text
    refusal(await trade(customers_api, contact, newer), "no code")
    # A code is for the contact it was sent to, and no other.
    elsewhere = Person.unique().contact("email")
    await customers_api.code(elsewhere)
    refusal(await trade(customers_api, elsewhere, newer), "wrong")


async def test_an_expired_code_is_refused(customers_api: OrdersApi) -> None:
    contact = Person.unique().contact("phone")
    code = await customers_api.code(contact)
    await rows(
        customers_api.database_url,
        "UPDATE sign_in_codes SET expires_at = now() - interval '1 second'",
    )
    body = refusal(await trade(customers_api, contact, code), "expired")
    assert "expired" in body["detail"]


async def test_codes_are_limited_per_contact_and_per_client_address(
    signing_in: SignedInApi,
) -> None:
    async with signing_in(sign_in_codes_per_contact="2/hour") as api:
        victim = Person.unique().contact("phone")
        asked = [(await api.client.post("/customers/sign-in/code", json=victim)) for _ in range(3)]
        assert [answer.status_code for answer in asked] == [202, 202, 429]
        assert int(asked[-1].headers["Retry-After"]) > 0
        assert "this phone number or email" in asked[-1].json()["detail"]
        # Written another way, the number is the same number.
        same = {"phone": victim["phone"].replace(" ", "-")}
        assert (await api.client.post("/customers/sign-in/code", json=same)).status_code == 429
        other = Person.unique().contact("phone")
        assert (await api.client.post("/customers/sign-in/code", json=other)).status_code == 202
    async with signing_in(sign_in_codes_per_client="3/hour") as api:
        statuses = [
            (
                await api.client.post(
                    "/customers/sign-in/code", json=Person.unique().contact("email")
                )
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429]
        metrics = (await api.client.get("/metrics")).text
        [limited] = re.findall(
            r'orders_sign_in_rate_limited_total\{limit="client"\} (\S+)', metrics
        )
        assert float(limited) >= 1


async def test_wrong_tries_are_limited_per_client_address(signing_in: SignedInApi) -> None:
    async with signing_in(sign_in_attempts_per_client="3/hour") as api:
        contacts = [Person.unique().contact("phone") for _ in range(2)]
        codes = [await api.code(contact) for contact in contacts]
        tried = [(await trade(api, contacts[0], another(codes[0]))).status_code for _ in range(3)]
        assert tried == [400, 400, 400]
        # Whatever contact the next try is for, this address has tried enough.
        limited = await trade(api, contacts[1], codes[1])
        assert limited.status_code == 429, limited.text
        assert "sign-in attempts from this address" in limited.json()["detail"]


async def test_sign_in_says_why_it_cannot_work(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact = Person.unique().contact("phone")
    async with orders_app(infra) as api:  # no notifications service set up
        answer = await api.client.post("/customers/sign-in/code", json=contact)
        assert answer.status_code == 503, answer.text
        assert "ORDERS_NOTIFICATIONS_URL" in answer.json()["detail"]
    nobody = f"http://127.0.0.1:{free_port()}"
    async with orders_app(
        infra, notifications_url=nobody, notifications_token=SIGN_IN_TOKEN
    ) as api:
        answer = await api.client.post("/customers/sign-in/code", json=contact)
        assert answer.status_code == 503, answer.text
        assert "unreachable" in answer.json()["detail"]
        assert answer.headers["Retry-After"]
    monkeypatch.setenv("AUTH_JWKS_URL", f"http://127.0.0.1:{free_port()}/jwks.json")
    async with orders_app(
        infra, notifications_url=nobody, notifications_token=SIGN_IN_TOKEN
    ) as api:
        for path, body in (
            ("/customers/sign-in/code", contact),
            ("/customers/sign-in/token", {**contact, "code": "123456"}),
        ):
            answer = await api.client.post(path, json=body)
            assert answer.status_code == 503, answer.text
            assert "identity provider" in answer.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"phone": "+39 06 1234 5678", "email": "giulia@example.com"},
        {"phone": None, "email": "giulia@example.com"},
        {"phone": "call me"},
        {"email": "giulia@example.com", "code": "12345"},
        {"email": "giulia@example.com", "code": "abcdef"},
    ],
    ids=["nothing", "both", "null phone", "not a phone", "short code", "letters"],
)
async def test_bad_sign_in_requests_are_422(customers_api: OrdersApi, body: dict[str, Any]) -> None:
    path = "/customers/sign-in/token" if "code" in body else "/customers/sign-in/code"
    answer = await customers_api.client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]
