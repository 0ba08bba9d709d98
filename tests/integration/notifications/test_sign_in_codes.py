"""Sign-in codes for the orders service (``POST /sign-in-codes``): only with its token, sent at
once through the real SMTP and SMS sinks, kept nowhere, and refusals that name neither the
recipient nor the code. And the signed-in customer's own messages (``/customers/me/...``)."""

from __future__ import annotations

from typing import Any

import httpx

from service_kit.auth import Role
from tests.support.infra import Infra
from tests.support.notifications import (
    Notifications,
    Sinks,
    new_order_id,
    notifications_under_test,
    placed,
)
from tests.support.polling import eventually
from tests.support.system import SIGN_IN_TOKEN
from tests.support.tokens import staff

ORDERS_SERVICE = {"Authorization": f"Bearer {SIGN_IN_TOKEN}"}


def code_for(**recipient: str) -> dict[str, Any]:
    return {**recipient, "code": "042917", "expires_in_seconds": 600}


async def test_only_the_orders_service_has_codes_sent(
    infra: Infra, sinks: Sinks, notifications: Notifications
) -> None:
    # Without a token of its own, the endpoint refuses everybody.
    async with notifications.in_process() as client:
        unset = await client.post("/sign-in-codes", json=code_for(phone="+390612345678"))
        assert unset.status_code == 401, unset.text
        assert "NOTIFICATIONS_SIGN_IN_TOKEN" in unset.json()["detail"]
    configured = await notifications_under_test(
        infra, sinks, {"NOTIFICATIONS_SIGN_IN_TOKEN": SIGN_IN_TOKEN}
    )
    async with configured.in_process() as client:
        for headers in (
            {},
            {"Authorization": f"Bearer {SIGN_IN_TOKEN}x"},
            staff(Role.MANAGER, subject="mgr-1"),  # a manager is not the orders service
        ):
            refused = await client.post(
                "/sign-in-codes", json=code_for(phone="+390612345678"), headers=headers
            )
            assert refused.status_code == 401, (headers, refused.text)
            assert refused.headers["www-authenticate"] == "Bearer"

        sms = await client.post(
            "/sign-in-codes", json=code_for(phone="+390611112222"), headers=ORDERS_SERVICE
        )
        assert sms.status_code == 200, sms.text
        assert sms.json()["channel"] == "sms"
        [texted] = [m for m in sinks.sms.delivered.values() if m.to == "+390611112222"]
        assert "042917" in texted.body and "10 minutes" in texted.body
        email = await client.post(
            "/sign-in-codes", json=code_for(email="nina@example.com"), headers=ORDERS_SERVICE
        )
        assert email.status_code == 200, email.text
        [mailed] = [m for m in sinks.smtp.received if "nina@example.com" in m.recipients]
        assert "042917" in mailed.body and "042917" not in mailed.subject

        # Sent at once, recorded nowhere: no delivery rows, no messages.
        assert await configured.query("SELECT * FROM deliveries") == []
        assert await configured.query("SELECT * FROM messages") == []
        metrics = (await client.get("/metrics")).text
        assert 'notifications_sign_in_codes_total{channel="sms",outcome="sent"}' in metrics

        for bad in (
            code_for(phone="+390611112222", email="nina@example.com"),
            code_for(phone=None, email="nina@example.com"),  # type: ignore[arg-type]
            code_for(phone="06 1111 2222"),  # not E.164 as the orders service sends it
            {**code_for(phone="+390611112222"), "code": "12"},
            {**code_for(phone="+390611112222"), "expires_in_seconds": 0},
        ):
            answer = await client.post("/sign-in-codes", json=bad, headers=ORDERS_SERVICE)
            assert answer.status_code == 422, (bad, answer.text)


async def test_refusals_and_outages_name_neither_the_recipient_nor_the_code(
    infra: Infra, sinks: Sinks
) -> None:
    service = await notifications_under_test(
        infra, sinks, {"NOTIFICATIONS_SIGN_IN_TOKEN": SIGN_IN_TOKEN}
    )
    sinks.sms.refuse("+39 06 3333 4444")
    sinks.smtp.refuse("gone@example.com")
    async with service.in_process() as client:
        for recipient, secret in (
            ({"phone": "+390633334444"}, "3333"),
            ({"email": "gone@example.com"}, "gone@"),
        ):
            refused = await client.post(
                "/sign-in-codes", json=code_for(**recipient), headers=ORDERS_SERVICE
            )
            assert refused.status_code == 422, refused.text
            assert "refused the recipient" in refused.json()["detail"]
            assert secret not in refused.text and "042917" not in refused.text
        sinks.sms.fail_for(60)
        try:
            down = await client.post(
                "/sign-in-codes", json=code_for(phone="+390655556666"), headers=ORDERS_SERVICE
            )
        finally:
            sinks.sms.fail_for(0)
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"]
        assert "5556666" not in down.text and "042917" not in down.text


async def test_a_signed_in_customer_reads_and_marks_their_own_messages(
    notifications: Notifications,
) -> None:
    anna, bruno = f"cust-{new_order_id()}", f"cust-{new_order_id()}"
    anna_order, bruno_order = new_order_id(), new_order_id()
    as_anna, as_bruno = staff(Role.CUSTOMER, subject=anna), staff(Role.CUSTOMER, subject=bruno)
    async with notifications.in_process() as client:
        await notifications.publish([placed(anna_order, anna), placed(bruno_order, bruno)])

        async def mine(headers: dict[str, str], query: str = "") -> httpx.Response:
            return await client.get(f"/customers/me/messages{query}", headers=headers)

        listed = await eventually(
            lambda: mine(as_anna),
            until=lambda response: response.status_code == 200 and len(response.json()) == 1,
            what="anna's message",
            timeout=60,
        )
        [message] = listed.json()
        assert (message["order_id"], message["customer_id"]) == (anna_order, anna)
        await eventually(
            lambda: mine(as_bruno),
            until=lambda response: response.status_code == 200 and len(response.json()) == 1,
            what="bruno's message",
            timeout=60,
        )
        bruno_message = (await mine(as_bruno)).json()[0]

        read = await client.post(f"/customers/me/messages/{message['id']}/read", headers=as_anna)
        assert read.status_code == 200 and read.json()["read_at"], read.text
        assert (await mine(as_anna, "?unread_only=true")).json() == []
        dismissed = await client.post(
            f"/customers/me/messages/{message['id']}/dismiss", headers=as_anna
        )
        assert dismissed.status_code == 200, dismissed.text
        assert (await mine(as_anna)).json() == []
        assert len((await mine(as_anna, "?include_dismissed=true")).json()) == 1

        # Somebody else's message is no message of theirs.
        theirs = await client.post(
            f"/customers/me/messages/{bruno_message['id']}/read", headers=as_anna
        )
        assert theirs.status_code == 404, theirs.text
        assert (await mine(as_bruno)).json()[0]["read_at"] is None
        # /me is the customer's; staff have the per-customer routes.
        assert (await mine({})).status_code == 401
        assert (await mine(staff(Role.MANAGER, subject="mgr-1"))).status_code == 403
