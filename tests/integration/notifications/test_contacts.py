"""Contacts from the restricted, compacted contacts topic: updates, opt-outs and erasure."""

from __future__ import annotations

from collections import Counter

from eventing.catalogue import OrderCancelled
from tests.support.notifications import (
    Notifications,
    contact,
    eventually,
    new_order_id,
    now,
    placed,
)


async def test_a_tombstone_erases_the_contact_and_personal_data_in_deliveries(
    notifications: Notifications,
) -> None:
    notifications.extra_env["NOTIFICATIONS_CONTACT_WAIT_SECONDS"] = "1"
    customer, before, after = f"cust-{new_order_id()}", new_order_id(), new_order_id()
    await notifications.start()
    await notifications.publish(
        [
            contact(customer, "Erika", email="erika@example.com", phone="+39333000"),
            placed(before, customer),
        ]
    )
    sent = await notifications.settled([before], 3)
    assert {r["recipient"] for r in sent} == {"erika@example.com", "+39333000", None}

    await notifications.publish([(None, customer)])  # the tombstone: erase this customer
    await eventually(
        lambda: notifications.query("SELECT * FROM contacts WHERE customer_id = $1", customer),
        lambda rows: rows == [],
        30,
        what="the contact erased",
    )
    await notifications.publish(
        [
            placed(after, customer),
            (OrderCancelled(order_id=after, cancelled_at=now(), reason="changed my mind",
                            previous_status="pending"), after),
        ]
    )  # fmt: skip
    rows = await notifications.settled([before, after], 9)
    # What was sent keeps its status; the copies of the address and text are gone.
    kept = [r for r in rows if r["order_id"] == before and r["channel"] != "in_app"]
    assert {(r["status"], r["recipient"], r["body"]) for r in kept} == {("sent", None, None)}
    # After the erasure there is no one to email or text: skipped with the reason, not lost.
    later = [r for r in rows if r["order_id"] == after]
    assert Counter((r["channel"], r["status"], r["reason"]) for r in later) == {
        ("email", "skipped", "no contact details for the customer"): 2,
        ("sms", "skipped", "no contact details for the customer"): 2,
        ("in_app", "sent", None): 2,
    }
    assert len(notifications.sinks.smtp.received) == 1
    assert len(notifications.sinks.sms.delivered) == 1


async def test_an_older_contact_update_never_overwrites_a_newer_one(
    notifications: Notifications,
) -> None:
    customer = f"cust-{new_order_id()}"
    newer, _ = contact(customer, "New Name", email="new@example.com", email_opt_in=False)
    older = newer.model_copy(
        update={"name": "Old Name", "email": "old@example.com", "email_opt_in": True,
                "updated_at": newer.updated_at.replace(year=newer.updated_at.year - 1)}
    )  # fmt: skip
    await notifications.start()
    await notifications.publish([(newer, customer), (older, customer)])
    stored = await eventually(
        lambda: notifications.query("SELECT * FROM contacts WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 1,
        30,
        what="the contact stored",
    )
    # Both applied (in order), and the older one changed nothing.
    inbox = await eventually(
        lambda: notifications.query(
            "SELECT count(*) AS n FROM inbox WHERE handler = 'notifications.contact_updated'"
        ),
        lambda rows: rows[0]["n"] == 2,
        30,
        what="both updates applied",
    )
    assert inbox[0]["n"] == 2
    stored = await notifications.query("SELECT * FROM contacts WHERE customer_id = $1", customer)
    assert (stored[0]["name"], stored[0]["email"], stored[0]["email_opt_in"]) == (
        "New Name",
        "new@example.com",
        False,
    )
