"""A provider's refusal names the recipient; the delivery's reason and the log lines do not."""

from __future__ import annotations

from eventing.auth import Role
from tests.support.notifications import (
    Notifications,
    api,
    contact,
    new_order_id,
    placed,
    token,
)


async def test_refusals_are_stored_and_logged_without_the_address_or_the_number(
    notifications: Notifications,
) -> None:
    customer, order = f"cust-{new_order_id()}", new_order_id()
    tag = order[-8:]
    email, phone = f"rosa.{tag}@example.com", f"+39347{int(tag, 16) % 10**7:07d}"
    # The SMTP server answers "550 5.1.1 <address>: ..."; the SMS API quotes the number.
    notifications.sinks.smtp.refuse(email)
    notifications.sinks.sms.refuse(phone)
    process = await notifications.start()
    await notifications.publish([contact(customer, "Rosa", email=email, phone=phone)])
    await notifications.publish([placed(order, customer)])

    rows = await notifications.settled([order], 3)
    reasons = {r["channel"]: (r["status"], r["reason"]) for r in rows}
    assert reasons["email"][0] == reasons["sms"][0] == "failed"  # permanent refusals
    assert "550" in reasons["email"][1] and "[recipient]" in reasons["email"][1]
    assert "21211" in reasons["sms"][1] and "[recipient]" in reasons["sms"][1]
    manager = token("anna", Role.MANAGER)
    shown = (await api("GET", f"{notifications.base_url}/orders/{order}/deliveries", manager)).text

    logged = process.log_path.read_text(errors="replace")
    assert "delivery" in logged and "failed" in logged  # the refusals were logged
    for where, text in {"reasons": str(reasons), "API": shown, "log": logged}.items():
        assert email not in text.lower(), where
        assert phone[1:] not in text, where
