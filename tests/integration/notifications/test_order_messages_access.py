"""Who may read an order's in-app messages, against the service in-process with its consumer on
the real broker: the holder of the order's tracking token (its SHA-256 came with OrderPlaced),
the order's customer, or a manager. Nothing presented, text not of a token's form, or a token
that does not fit is a 401 (a guessed order id reveals nothing), a valid token of another
customer or role a 403. Ids past what the
database holds are a 422, never a 500."""

from __future__ import annotations

import httpx

from contracts.catalogue import OrderConfirmed, new_tracking_token
from service_kit.auth import Role
from tests.support.notifications import Notifications, new_order_id, now, placed
from tests.support.polling import eventually
from tests.support.tokens import staff


async def messages_of(client: httpx.AsyncClient, order_id: str, **headers: str) -> httpx.Response:
    return await client.get(f"/orders/{order_id}/messages", headers=headers)


async def test_an_orders_messages_are_for_its_token_its_customer_or_a_manager(
    notifications: Notifications,
) -> None:
    anna, bruno = f"cust-{new_order_id()}", f"cust-{new_order_id()}"
    order, older = new_order_id(), new_order_id()
    tracking = new_tracking_token()
    async with notifications.in_process() as client:
        await notifications.publish(
            [
                placed(order, anna, tracking_token=tracking),
                # The confirmation carries no hash: it must not erase the one OrderPlaced gave.
                (OrderConfirmed(order_id=order, confirmed_at=now(), confirmed_by="customer",
                                customer_id=anna, lines=placed(order, anna)[0].lines,
                                fulfilment="delivery"), order),
                placed(older, anna),  # placed before OrderPlaced carried the hash
            ]
        )  # fmt: skip
        manager = staff(Role.MANAGER, subject="mgr-1")
        listed = await eventually(
            lambda: messages_of(client, older, **manager),
            until=lambda response: response.status_code == 200 and len(response.json()) == 1,
            what="the older order's message",
            timeout=60,
        )
        assert listed.json()[0]["kind"] == "order_received"

        by_token = await messages_of(client, order, **{"X-Tracking-Token": tracking})
        assert by_token.status_code == 200, by_token.text
        assert [m["kind"] for m in by_token.json()] == ["order_received"]
        assert (await messages_of(client, order, **staff(Role.CUSTOMER, subject=anna))).json() == (
            by_token.json()
        )
        assert (await messages_of(client, order, **manager)).json() == by_token.json()

        # 401: nothing presented, or a bearer token that is no valid token.
        anonymous = await messages_of(client, order)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert "X-Tracking-Token" in anonymous.json()["detail"]
        forged = await messages_of(client, order, Authorization="Bearer x.y.z")
        assert forged.status_code == 401
        garbled = await messages_of(client, order, **{"X-Tracking-Token": tracking[:-1]})
        assert garbled.status_code == 401  # not even of a token's form: no credential
        assert "not a tracking token" in garbled.json()["detail"]

        # A wrong token, or a token for an order never heard of, look the same: no credential.
        wrong = await messages_of(client, order, **{"X-Tracking-Token": new_tracking_token()})
        unknown = await messages_of(client, new_order_id(), **{"X-Tracking-Token": tracking})
        assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
        assert wrong.status_code == 401
        assert "does not fit" in wrong.json()["detail"]
        # An order remembered without a hash has no token to match.
        unhashed = await messages_of(client, older, **{"X-Tracking-Token": tracking})
        assert unhashed.status_code == 401
        # 404: only a manager learns that an order is not known here.
        assert (await messages_of(client, new_order_id(), **manager)).status_code == 404

        # 403: a valid token of another customer, or of a role that is not allowed.
        for other in (
            staff(Role.CUSTOMER, subject=bruno),
            staff(Role.CHEF, subject=anna),
            staff(Role.DRIVER, subject="driver-1"),
            staff(Role.ANALYST, subject="ada"),
        ):
            refused = await messages_of(client, order, **other)
            assert refused.status_code == 403, other
            assert refused.json()["detail"] == (
                "only the order's customer or a manager may read its messages"
            )
        # A customer learns nothing of orders that are not theirs, known or not.
        strangers = await messages_of(client, new_order_id(), **staff(Role.CUSTOMER, subject=bruno))
        assert strangers.status_code == 403
        # The older order: its customer and managers, still.
        assert (
            await messages_of(client, older, **staff(Role.CUSTOMER, subject=anna))
        ).status_code == 200


async def test_ids_beyond_what_the_database_holds_are_a_422(notifications: Notifications) -> None:
    customer = f"cust-{new_order_id()}"
    mine = staff(Role.CUSTOMER, subject=customer)
    async with notifications.in_process() as client:
        base = f"/customers/{customer}/messages"
        for step in ("read", "dismiss"):
            for message_id in ("403537658371010854912", str(2**63), "0", "-1"):
                answer = await client.post(f"{base}/{message_id}/{step}", headers=mine)
                assert answer.status_code == 422, (step, message_id, answer.text)
                assert answer.json()["detail"][0]["loc"] == ["path", "message_id"]
            biggest = await client.post(f"{base}/{2**63 - 1}/{step}", headers=mine)
            assert biggest.status_code == 404
        for url in (
            "/customers/a b/messages",
            f"/customers/{'x' * 101}/messages",
            "/orders/a b/messages",
            "/orders/a b/deliveries",
        ):
            answer = await client.get(url, headers=staff(Role.MANAGER, subject="mgr-1"))
            assert answer.status_code == 422, url
        deliveries = await client.get(
            "/deliveries", params={"order_id": "a b"}, headers=staff(Role.MANAGER, subject="mgr-1")
        )
        assert deliveries.status_code == 422
        assert deliveries.json()["detail"][0]["loc"] == ["query", "order_id"]
