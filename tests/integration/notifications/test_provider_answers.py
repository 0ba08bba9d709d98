"""A provider's refusal names the recipient; the delivery's reason and the log lines do not."""

from __future__ import annotations

import traceback
import uuid

import pytest
from sqlalchemy import text

from eventing.cloudevents_kafka import Envelope
from eventing.consumer import ReceivedEvent
from eventing.database import create_engine, session_factory
from notifications.adapters.delivery_queue import AsyncpgDeliveryQueue
from notifications.adapters.repository import SqlAlchemyRepository
from notifications.domain.messages import Channel, Policy
from notifications.service_layer.dispatch import Dispatcher, RetryPolicy, UnexpectedProviderError
from notifications.service_layer.events import EVENT_HANDLERS, EventDependencies
from notifications.service_layer.ports import Outgoing
from service_kit.auth import Role
from service_kit.handlers import subscriptions
from tests.support.infra import Infra
from tests.support.notifications import Notifications, api, contact, new_order_id, placed
from tests.support.system import migrated_database
from tests.support.tokens import staff


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
    manager = staff(Role.MANAGER, subject="anna")
    shown = (await api("GET", f"{notifications.base_url}/orders/{order}/deliveries", manager)).text

    logged = process.log_path.read_text(errors="replace")
    assert "delivery" in logged and "failed" in logged  # the refusals were logged
    for where, seen in {"reasons": str(reasons), "API": shown, "log": logged}.items():
        assert email not in seen.lower(), where
        assert phone[1:] not in seen, where


class UnforeseenFailure:
    """A provider library failing in a way the sender does not translate into a SendError."""

    channel = Channel.SMS

    async def send(self, message: Outgoing) -> str:
        raise RuntimeError(f"malformed reply while sending to {message.recipient}")

    async def close(self) -> None:
        pass


async def test_an_unforeseen_provider_failure_reaches_the_log_without_the_number(
    infra: Infra,
) -> None:
    url = await migrated_database(infra, "notifications")
    engine = create_engine(url, pool_size=1, application_name="provider-answers-test")
    sessions = session_factory(engine)
    queue = AsyncpgDeliveryQueue(url, application_name="dispatch-test")  # as a dispatcher has
    customer, order, phone = f"cust-{new_order_id()}", new_order_id(), "+393470001122"
    [order_received] = subscriptions(
        [h for h in EVENT_HANDLERS if h.name == "notifications.order_received"],
        EventDependencies(Policy(), SqlAlchemyRepository),
    )
    event, _ = placed(order, customer)
    envelope = Envelope(
        id=str(uuid.uuid4()), type=event.event_type, source="/test", data={}, subject=order
    )
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO contacts VALUES (:customer, 'Rosa', NULL, :phone, true, true,"
                    " now())"
                ),
                {"customer": customer, "phone": phone},
            )
            await order_received.handler(session, ReceivedEvent(event, envelope, "orders", 0, 0))
        dispatcher = Dispatcher(Channel.SMS, queue, UnforeseenFailure(), RetryPolicy())
        with pytest.raises(UnexpectedProviderError) as raised:
            await dispatcher.dispatch_due()
        # What the dispatcher's loop logs (log.exception): the message and the traceback.
        logged = "".join(traceback.format_exception(raised.value))
        assert "malformed reply while sending to [recipient]" in logged
        assert phone[1:] not in logged
        async with sessions() as session:
            [row] = (
                await session.execute(
                    text(
                        "SELECT status, attempts, next_attempt_at <= now() AS due"
                        " FROM deliveries WHERE channel = 'sms'"
                    )
                )
            ).all()
        assert tuple(row) == ("pending", 0, True)  # released: tried again on the next poll
    finally:
        await queue.close()
        await engine.dispose()
