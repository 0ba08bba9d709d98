"""Contacts from the restricted, compacted contacts topic: updates, opt-outs and erasure."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
from aiokafka import AIOKafkaProducer

from contracts.catalogue import OrderCancelled
from contracts.topics import CUSTOMER_CONTACTS
from tests.support.kafka import read_topic
from tests.support.metrics import scrape, value
from tests.support.notifications import Notifications, contact, new_order_id, now, placed
from tests.support.polling import eventually


async def test_a_tombstone_erases_the_contact_and_personal_data_in_deliveries(
    notifications: Notifications,
) -> None:
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
        until=lambda rows: rows == [],
        timeout=30,
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
    # After the erasure there is no one to email or text: skipped at once with the reason (no
    # waiting for a contact that cannot come), not lost.
    later = [r for r in rows if r["order_id"] == after]
    assert Counter((r["channel"], r["status"], r["reason"]) for r in later) == {
        ("email", "skipped", "contact erased"): 2,
        ("sms", "skipped", "contact erased"): 2,
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
        until=lambda rows: len(rows) == 1,
        timeout=30,
        what="the contact stored",
    )
    # Both applied (in order), and the older one changed nothing.
    inbox = await eventually(
        lambda: notifications.query(
            "SELECT count(*) AS n FROM inbox WHERE handler = 'notifications.contact_updated'"
        ),
        until=lambda rows: rows[0]["n"] == 2,
        timeout=30,
        what="both updates applied",
    )
    assert inbox[0]["n"] == 2
    stored = await notifications.query("SELECT * FROM contacts WHERE customer_id = $1", customer)
    assert (stored[0]["name"], stored[0]["email"], stored[0]["email_opt_in"]) == (
        "New Name",
        "new@example.com",
        False,
    )


async def test_an_erased_customer_stays_erased_when_a_contact_record_comes_back(
    notifications: Notifications,
) -> None:
    """A contact update that was dead-lettered, produced again after the customer's tombstone
    (``pizzeria dead-letters replay``), and a late record with a newer ``updated_at``: neither
    brings the contact back, and nothing is sent to either address."""
    notifications.extra_env.update(
        {
            "NOTIFICATIONS_CONSUMER_MAX_ATTEMPTS": "2",
            "NOTIFICATIONS_CONSUMER_RETRY_BASE_SECONDS": "0",
        }
    )
    customer, before, after = f"cust-{new_order_id()}", new_order_id(), new_order_id()
    tag = customer[-8:]
    original = contact(customer, "Erika", email=f"erika.{tag}@example.com", phone="+39333111")
    changed = contact(customer, "Erika", email=f"erika.new.{tag}@example.com", phone="+39333222")
    late, _ = contact(customer, "Erika", email=f"erika.late.{tag}@example.com", phone="+39333333")
    late = late.model_copy(update={"updated_at": now() + timedelta(days=1)})
    # The database refuses the changed details for a while, so their record is dead-lettered
    # without being applied (a replay of an applied record would just meet its inbox row).
    await notifications.query(
        """
        CREATE FUNCTION refuse_changed_contact() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.phone = '+39333222' THEN RAISE EXCEPTION 'contacts under maintenance'; END IF;
            RETURN NEW;
        END $$
        """
    )
    await notifications.query(
        "CREATE TRIGGER refuse_changed_contact BEFORE INSERT OR UPDATE ON contacts"
        " FOR EACH ROW EXECUTE FUNCTION refuse_changed_contact()"
    )
    await notifications.start()
    contacts_topic = notifications.topics[CUSTOMER_CONTACTS.name]
    _, _, changed_id = await notifications.publish([original, placed(before, customer), changed])
    await notifications.settled([before], 3)
    async with httpx.AsyncClient(base_url=notifications.base_url, timeout=10) as client:

        async def dead_lettered() -> float:
            samples = await scrape(client)
            return value(
                samples,
                "consumer_events_total",
                group=notifications.group,
                topic=contacts_topic,
                outcome="dead_lettered",
            )

        await eventually(
            dead_lettered, until=lambda count: count == 1, timeout=30, what="dead-lettered"
        )
    await notifications.query("DROP TRIGGER refuse_changed_contact ON contacts")

    await notifications.publish([(None, customer)])
    await eventually(
        lambda: notifications.query("SELECT * FROM contacts WHERE customer_id = $1", customer),
        until=lambda rows: rows == [],
        timeout=30,
        what="the contact erased",
    )
    # What the replay does: the record, as it was (key, value, headers), to its topic again.
    [record] = [
        r
        for r in await read_topic(
            notifications.infra.kafka_bootstrap,
            contacts_topic,
            until=lambda rs: any(dict(r.headers).get("ce_id") == changed_id.encode() for r in rs),
        )
        if dict(r.headers).get("ce_id") == changed_id.encode()
    ]
    producer = AIOKafkaProducer(**notifications.infra.kafka_options(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            contacts_topic, key=record.key, value=record.value, headers=list(record.headers)
        )
    finally:
        await producer.stop()
    [late_id] = await notifications.publish([(late, customer)])
    await eventually(
        lambda: notifications.query(
            "SELECT event_id FROM inbox WHERE handler = 'notifications.contact_updated'"
            " AND event_id = ANY($1::text[])",
            [changed_id, late_id],
        ),
        until=lambda rows: len(rows) == 2,
        timeout=30,
        what="both records applied",
    )
    assert (
        await notifications.query("SELECT * FROM contacts WHERE customer_id = $1", customer) == []
    )
    marks = await notifications.query(
        "SELECT customer_id FROM erased_customers WHERE customer_id = $1", customer
    )
    assert len(marks) == 1

    await notifications.publish([placed(after, customer)])
    later = await notifications.settled([after], 3)
    assert {(r["channel"], r["status"], r["reason"]) for r in later} == {
        ("email", "skipped", "contact erased"),
        ("sms", "skipped", "contact erased"),
        ("in_app", "sent", None),
    }
    # Only the first order's email and SMS, to the original details, ever went out.
    assert [m.recipients for m in notifications.sinks.smtp.received] == [[original[0].email]]
    assert [m.to for m in notifications.sinks.sms.delivered.values()] == [original[0].phone]
