"""Guests and customers: an anonymous order touches no stored customer and names none; a
signed-in customer orders with their stored details, sees their own orders and profile and
nobody else's, and changes their details (a new phone or email only with the code sent to it)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from contracts.topics import CUSTOMER_CONTACTS
from eventing.database import asyncpg_dsn
from service_kit.auth import Role
from tests.support.customers import Person
from tests.support.orders import OrdersApi

PIZZA = [{"pizza": "Margherita", "size": "medium", "quantity": 1}]


async def query(api: OrdersApi, sql: str, *args: object) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(asyncpg_dsn(api.database_url))
    try:
        return [dict(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def customer_row(api: OrdersApi, customer_id: str) -> dict[str, Any]:
    [row] = await query(api, "SELECT * FROM customers WHERE id = $1", customer_id)
    return row


async def registered(api: OrdersApi, person: Person) -> tuple[str, dict[str, str]]:
    """``person`` signed up by phone, with every detail in their profile."""
    customer_id, me = await api.sign_in(person.contact("phone"), name=person.name)
    email_code = await api.code(person.contact("email"))
    changed = await api.client.patch(
        "/customers/me",
        json={"email": person.email, "email_code": email_code, "address": person.address},
        headers=me,
    )
    assert changed.status_code == 200, changed.text
    return customer_id, me


def names_no_customer(answer: httpx.Response, *customer_ids: str) -> None:
    assert answer.json()["customer_id"] is None, answer.text
    for customer_id in customer_ids:
        assert customer_id not in answer.text


async def test_an_anonymous_order_with_a_customers_phone_changes_nothing_and_names_no_one(
    customers_api: OrdersApi,
) -> None:
    api = customers_api.client
    victim, other = Person.unique(), Person.unique()
    victim_id, _ = await registered(customers_api, victim)
    other_id, _ = await registered(customers_api, other)
    before = {cid: await customer_row(customers_api, cid) for cid in (victim_id, other_id)}
    contact_events = len(
        await query(customers_api, "SELECT * FROM outbox WHERE topic = $1", CUSTOMER_CONTACTS.name)
    )

    attacks: list[dict[str, Any]] = [
        {"name": "Mallory", "phone": victim.phone, "address": "Via dei Ladri 13"},
        # The victim's phone with somebody else's email was a ContactConflict once: no more.
        {"name": "Mallory", "phone": victim.phone, "email": other.email, "address": "Via X 1"},
        {"name": "Mallory", "email": victim.email.upper(), "sms_opt_in": False, "address": "Y"},
    ]
    key = str(uuid.uuid4())
    for attack in attacks:
        placed = await api.post("/orders", json={"customer": attack, "lines": PIZZA})
        assert placed.status_code == 201, placed.text
        names_no_customer(placed, victim_id, other_id)
        token = {"X-Tracking-Token": placed.json()["tracking_token"]}
        tracked = await api.get(f"/orders/{placed.json()['id']}", headers=token)
        assert tracked.status_code == 200, tracked.text
        names_no_customer(tracked, victim_id, other_id)
        # The order is the attacker's own snapshot, not the victim's.
        assert await customers_api.customer_of(placed.json()["id"]) not in (victim_id, other_id)
    body = {"customer": attacks[0], "lines": PIZZA}
    first = await api.post("/orders", json=body, headers={"Idempotency-Key": key})
    replayed = await api.post("/orders", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, replayed.status_code) == (201, 200), replayed.text
    names_no_customer(replayed, victim_id, other_id)

    after = {cid: await customer_row(customers_api, cid) for cid in (victim_id, other_id)}
    assert after == before
    # Every guest order published its own snapshot, and nothing about the customers.
    published = await query(
        customers_api, "SELECT * FROM outbox WHERE topic = $1", CUSTOMER_CONTACTS.name
    )
    fresh = published[contact_events:]
    assert len(fresh) == len(attacks) + 1
    assert {row["aggregate_id"] for row in fresh}.isdisjoint({victim_id, other_id})
    # Nor do the customers' orders change hands: theirs is still an empty list.
    for person in (victim, other):
        _, me = await customers_api.sign_in(person.contact("phone"))
        mine = await api.get("/customers/me/orders", headers=me)
        assert mine.json() == {"orders": [], "next_cursor": None}


async def test_a_signed_in_order_is_for_the_stored_details(customers_api: OrdersApi) -> None:
    api = customers_api.client
    person = Person.unique()
    customer_id, me = await registered(customers_api, person)

    with_details = await api.post(
        "/orders", json={"customer": person.details(), "lines": PIZZA}, headers=me
    )
    assert with_details.status_code == 422, with_details.text
    assert with_details.json()["detail"][0]["loc"] == ["body", "customer"]

    placed = [await customers_api.place(headers=me, customer=None, lines=PIZZA) for _ in range(3)]
    for order in placed:
        assert order["customer_id"] == customer_id
        assert order["tracking_token"]
    # A guest order with the same details is not theirs.
    await customers_api.place(customer=person.details(), lines=PIZZA)

    first = await api.get("/customers/me/orders?limit=2", headers=me)
    assert first.status_code == 200, first.text
    assert first.json()["next_cursor"]
    rest = await api.get(
        f"/customers/me/orders?limit=2&cursor={first.json()['next_cursor']}", headers=me
    )
    listed = [order["id"] for order in first.json()["orders"] + rest.json()["orders"]]
    assert listed == [order["id"] for order in reversed(placed)]
    assert rest.json()["next_cursor"] is None
    pending = await api.get("/customers/me/orders?status=confirmed", headers=me)
    assert pending.json()["orders"] == []

    # Their token is a key to their orders, without the tracking token.
    order_url = f"/orders/{placed[0]['id']}"
    read = await api.get(order_url, headers=me)
    assert read.status_code == 200 and read.json()["customer_id"] == customer_id
    confirmed = await api.post(f"{order_url}/confirm", headers=me)
    assert confirmed.json()["status"] == "confirmed", confirmed.text
    cancelled = await api.post(
        f"{order_url}/cancel", json={"reason": "changed my mind"}, headers=me
    )
    assert cancelled.json()["status"] == "cancelled", cancelled.text


async def test_a_customers_idempotency_key_is_theirs_alone(customers_api: OrdersApi) -> None:
    api = customers_api.client
    customer_id, me = await registered(customers_api, Person.unique())
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"lines": PIZZA}
    placed = await api.post("/orders", json=body, headers={**me, **key})
    assert placed.status_code == 201, placed.text
    again = await api.post("/orders", json=body, headers={**me, **key})
    assert again.status_code == 200 and again.json()["customer_id"] == customer_id
    # Someone else with the same key and body is another request, not the customer's order.
    stranger = await api.post(
        "/orders",
        json={**body, "customer": {"name": "X", "phone": "+39 06 5555 0199", "address": "Y"}},
        headers=key,
    )
    assert stranger.status_code == 422, stranger.text
    assert customer_id not in stranger.text
    _, other = await registered(customers_api, Person.unique())
    theirs = await api.post("/orders", json=body, headers={**other, **key})
    assert theirs.status_code == 422, theirs.text
    assert customer_id not in theirs.text


async def test_a_new_customer_gives_a_name_and_an_address_before_ordering(
    customers_api: OrdersApi,
) -> None:
    api = customers_api.client
    _, me = await customers_api.sign_in(Person.unique().contact("email"))  # no name given
    nameless = await api.post("/orders", json={"lines": PIZZA, "fulfilment": "pickup"}, headers=me)
    assert nameless.status_code == 422, nameless.text
    assert "PATCH /customers/me" in nameless.json()["detail"]
    assert (await api.patch("/customers/me", json={"name": "Nina"}, headers=me)).status_code == 200
    pickup = await api.post("/orders", json={"lines": PIZZA, "fulfilment": "pickup"}, headers=me)
    assert pickup.status_code == 201, pickup.text
    delivery = await api.post("/orders", json={"lines": PIZZA}, headers=me)
    assert delivery.status_code == 422, delivery.text
    assert "address" in delivery.json()["detail"]
    # Guests still need one way or another to be reached, signed in or not.
    anonymous = await api.post("/orders", json={"lines": PIZZA, "fulfilment": "pickup"})
    assert anonymous.status_code == 422, anonymous.text
    assert anonymous.json()["detail"][0]["loc"] == ["body", "customer"]


async def test_a_customer_token_reaches_its_own_customer_and_nothing_else(
    customers_api: OrdersApi,
) -> None:
    api = customers_api.client
    a_id, a = await registered(customers_api, Person.unique())
    b_id, b = await registered(customers_api, Person.unique())
    b_order = await customers_api.place(headers=b, customer=None, lines=PIZZA)
    guest = await customers_api.place(customer=Person.unique().details(), lines=PIZZA)

    for order in (b_order, guest):
        for method, path, body in (
            ("GET", f"/orders/{order['id']}", None),
            ("POST", f"/orders/{order['id']}/confirm", None),
            ("POST", f"/orders/{order['id']}/cancel", {"reason": "mine now"}),
        ):
            refused = await api.request(method, path, json=body, headers=a)
            assert refused.status_code == 403, (path, refused.text)
    # An order that does not exist is refused the same way: a guessed id tells nothing.
    unknown = await api.get(f"/orders/{uuid.uuid4()}", headers=a)
    assert (unknown.status_code, unknown.json()) == (
        403,
        {"detail": "customers may only see their own orders"},
    )
    # Staff and manager endpoints stay closed to customers.
    for method, path in (
        ("GET", "/orders"),
        ("GET", f"/customers/{b_id}"),
        ("GET", f"/customers/{a_id}"),
        ("DELETE", f"/customers/{a_id}"),
        ("PATCH", f"/customers/{b_id}"),
        ("POST", f"/orders/{b_order['id']}/pickup"),
        ("PUT", "/menu/toppings/truffle"),
    ):
        patch: Any = {} if method == "PATCH" else None
        refused = await api.request(method, path, json=patch, headers=a)
        assert refused.status_code == 403, (method, path, refused.text)
    mine = await api.get("/customers/me/orders", headers=a)
    assert mine.json()["orders"] == []
    me = await api.get("/customers/me", headers=a)
    assert me.json()["id"] == a_id and b_id not in me.text
    # The tracking token is a credential of its own: it reads the order, naming no customer.
    tracked = await api.get(
        f"/orders/{b_order['id']}", headers={**a, "X-Tracking-Token": b_order["tracking_token"]}
    )
    assert tracked.status_code == 200 and tracked.json()["customer_id"] is None
    # A customer token whose subject is no customer of ours (or a guest snapshot) gets nothing.
    for subject in (str(uuid.uuid4()), await customers_api.customer_of(guest["id"])):
        stranger = customers_api.token(Role.CUSTOMER, subject=subject)
        assert (await api.get("/customers/me", headers=stranger)).status_code == 404
        placed = await api.post("/orders", json={"lines": PIZZA}, headers=stranger)
        assert placed.status_code == 403, placed.text


async def test_a_customer_changes_their_profile_and_proves_a_new_phone(
    customers_api: OrdersApi,
) -> None:
    api = customers_api.client
    person, other, fresh = Person.unique(), Person.unique(), Person.unique()
    customer_id, me = await registered(customers_api, person)
    other_id, _ = await registered(customers_api, other)

    changed = await api.patch(
        "/customers/me", json={"address": "Via Nuova 2", "sms_opt_in": False}, headers=me
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["address"], changed.json()["sms_opt_in"]) == ("Via Nuova 2", False)
    [event] = await query(
        customers_api,
        "SELECT payload FROM outbox WHERE topic = $1 AND aggregate_id = $2 ORDER BY id DESC "
        "LIMIT 1",
        CUSTOMER_CONTACTS.name,
        customer_id,
    )
    published = (
        json.loads(event["payload"]) if isinstance(event["payload"], str) else event["payload"]
    )
    assert (published["address"], published["sms_opt_in"]) == ("Via Nuova 2", False)

    # A new phone needs the code sent to it.
    unproven = await api.patch("/customers/me", json={"phone": fresh.phone}, headers=me)
    assert unproven.status_code == 422, unproven.text
    assert unproven.json()["detail"][0]["loc"] == ["body", "phone_code"]
    code = await customers_api.code(fresh.contact("phone"))
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = await api.patch(
        "/customers/me", json={"phone": fresh.phone, "phone_code": wrong}, headers=me
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["field"] == "phone_code"
    proven = await api.patch(
        "/customers/me", json={"phone": fresh.phone, "phone_code": code}, headers=me
    )
    assert proven.status_code == 200, proven.text
    assert proven.json()["phone"] == fresh.e164
    # Now that phone signs in to this customer, and the old one to nobody yet.
    assert (await customers_api.sign_in(fresh.contact("phone")))[0] == customer_id
    assert (await customers_api.sign_in(person.contact("phone")))[0] != customer_id

    # Another customer's phone: proven or not, it stays theirs; the answer names nobody.
    taken_code = await customers_api.code(other.contact("phone"))
    taken = await api.patch(
        "/customers/me", json={"phone": other.phone, "phone_code": taken_code}, headers=me
    )
    assert taken.status_code == 409, taken.text
    assert taken.json() == {"detail": "this phone number belongs to another customer"}
    assert other_id not in taken.text

    for body, status in (
        ({"phone": None, "email": None}, 422),
        ({"name": None}, 422),
        ({"sms_opt_in": 1}, 422),
        ({"customer_id": other_id}, 422),
        ({}, 200),
    ):
        answer = await api.patch("/customers/me", json=body, headers=me)
        assert answer.status_code == status, (body, answer.text)
    assert (await customer_row(customers_api, customer_id))["phone"] == fresh.e164


async def test_a_manager_corrects_a_profile_and_an_erased_customer_is_gone(
    customers_api: OrdersApi,
) -> None:
    api = customers_api.client
    manager = customers_api.token(Role.MANAGER)
    person, other = Person.unique(), Person.unique()
    customer_id, me = await registered(customers_api, person)
    await registered(customers_api, other)

    corrected = await api.patch(
        f"/customers/{customer_id}", json={"name": "Carla C."}, headers=manager
    )
    assert corrected.status_code == 200, corrected.text
    assert (await api.get("/customers/me", headers=me)).json()["name"] == "Carla C."
    taken = await api.patch(
        f"/customers/{customer_id}", json={"email": other.email}, headers=manager
    )
    assert taken.status_code == 409, taken.text
    missing = await api.patch(f"/customers/{uuid.uuid4()}", json={}, headers=manager)
    assert missing.status_code == 404, missing.text

    assert (await api.delete(f"/customers/{customer_id}", headers=manager)).status_code == 204
    for method, path, body in (
        ("GET", "/customers/me", None),
        ("PATCH", "/customers/me", {"name": "Back again"}),
        ("GET", "/customers/me/orders", None),
        ("POST", "/orders", {"lines": PIZZA}),
        ("PATCH", f"/customers/{customer_id}", {"name": "Back again"}),
    ):
        headers = manager if path.startswith(f"/customers/{customer_id}") else me
        gone = await api.request(method, path, json=body, headers=headers)
        assert gone.status_code == 410, (method, path, gone.text)
    # Signing in with the same phone starts a new customer.
    assert (await customers_api.sign_in(person.contact("phone")))[0] != customer_id


async def test_a_customer_erases_themselves(customers_api: OrdersApi) -> None:
    api = customers_api.client
    person = Person.unique()
    customer_id, me = await registered(customers_api, person)
    order = await customers_api.place(headers=me, customer=None, lines=PIZZA)
    assert (await api.delete("/customers/me", headers=me)).status_code == 204
    assert (await api.delete("/customers/me", headers=me)).status_code == 204  # again: the same
    row = await customer_row(customers_api, customer_id)
    assert row["erased_at"] is not None
    assert (row["name"], row["phone"], row["email"], row["address"]) == (None,) * 4
    tombstones = await query(
        customers_api,
        "SELECT * FROM outbox WHERE aggregate_id = $1 AND event_type = 'tombstone'",
        customer_id,
    )
    assert len(tombstones) == 2  # the contacts topic and its dead letters
    assert (await api.get("/customers/me", headers=me)).status_code == 410
    # The order stays, under the same (now anonymous) id.
    assert await customers_api.customer_of(order["id"]) == customer_id
