"""A dispatcher's rules, against an in-memory unit of work and provider: what is sent, waited
for, skipped, retried or failed, and what is written when."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from notifications.adapters.doorbell import Doorbell
from notifications.domain.messages import (
    CONTACT_ERASED,
    Channel,
    Contact,
    Delivery,
    DeliveryStatus,
    Kind,
    Notice,
    Policy,
    deliveries_for,
)
from notifications.service_layer.dispatch import Dispatcher, RetryPolicy, UnexpectedProviderError
from notifications.service_layer.ports import PermanentSendError, TransientSendError
from tests.unit.notifications.fakes import NOW, FakeSender, FakeUnitOfWork

ANNA = Contact("c-1", "Anna", "anna@example.com", "+393470001122")
WAIT = timedelta(minutes=10)
RETRY = RetryPolicy(base_seconds=2.0, cap_seconds=60.0, max_attempts=3, wait_poll_seconds=1.0)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def recorded(
    uow: FakeUnitOfWork, *, customer_id: str | None = "c-1", contact: Contact | None = ANNA
) -> None:
    """An order received (its three deliveries) and, unless None, its customer's contact."""
    policy = Policy(contact_wait=WAIT, clock=lambda: NOW)
    notice = Notice(
        Kind.ORDER_RECEIVED, "o-1", {"short_id": "o-1", "pizzas": "1 pizza", "total": "9.50 EUR"}
    )
    await uow.repository.add_deliveries(deliveries_for("e-1", notice, customer_id, policy))
    if contact is not None:
        await uow.repository.save_contact(contact, NOW)


def dispatcher(
    channel: Channel, uow: FakeUnitOfWork, clock: Clock, sender: FakeSender | None = None
) -> Dispatcher:
    if sender is None and channel is not Channel.IN_APP:
        sender = FakeSender(channel)
    return Dispatcher(channel, uow, sender, RETRY, clock)


def delivery(uow: FakeUnitOfWork, channel: Channel) -> Delivery:
    return uow.repository.delivery(channel)


async def test_an_in_app_message_is_written_with_its_delivery_sent(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow, contact=None)  # in-app messages need no contact
    assert await dispatcher(Channel.IN_APP, uow, clock).dispatch_one()
    [message] = uow.repository.messages.values()
    assert (message.customer_id, message.kind, message.body) == (
        "c-1",
        Kind.ORDER_RECEIVED,
        "We received your order o-1 (1 pizza, 9.50 EUR). Thank you!",
    )
    sent = delivery(uow, Channel.IN_APP)
    assert (sent.status, sent.sent_at, sent.attempts) == (DeliveryStatus.SENT, NOW, 0)
    assert uow.commits == 1
    assert not await dispatcher(Channel.IN_APP, uow, clock).dispatch_one()  # nothing else due


async def test_an_email_goes_to_the_contact_with_the_deliverys_key(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    sender = FakeSender(Channel.EMAIL)
    assert await dispatcher(Channel.EMAIL, uow, clock, sender).dispatch_one()
    [outgoing] = sender.sent
    email = delivery(uow, Channel.EMAIL)
    assert (outgoing.recipient, outgoing.idempotency_key) == (
        "anna@example.com",
        email.idempotency_key,
    )
    assert outgoing.body.startswith("Hello Anna,")
    assert (email.status, email.attempts, email.provider_id) == (DeliveryStatus.SENT, 1, "fake-1")
    assert (email.recipient, email.subject, email.body) == (
        "anna@example.com",
        outgoing.subject,
        outgoing.body,
    )


async def test_an_unknown_order_or_contact_is_waited_for_then_skipped(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow, customer_id=None, contact=None)
    sms = dispatcher(Channel.SMS, uow, clock)
    assert await sms.dispatch_one()
    waiting = delivery(uow, Channel.SMS)
    assert (waiting.status, waiting.reason) == (DeliveryStatus.PENDING, "waiting: order not known")
    assert waiting.next_attempt_at == NOW + timedelta(seconds=1)

    await uow.repository.remember_order("o-1", "c-1", "delivery", None)
    clock.now += timedelta(seconds=1)
    assert await sms.dispatch_one()
    waiting = delivery(uow, Channel.SMS)
    assert (waiting.customer_id, waiting.reason) == (
        "c-1",
        "waiting: no contact details for the customer",
    )

    clock.now = NOW + WAIT
    assert await sms.dispatch_one()
    skipped = delivery(uow, Channel.SMS)
    assert (skipped.status, skipped.reason) == (
        DeliveryStatus.SKIPPED,
        "no contact details for the customer",
    )


async def test_an_erased_customer_or_an_opt_out_is_skipped_at_once(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow, contact=Contact("c-1", "Anna", "anna@example.com", None, sms_opt_in=False))
    assert await dispatcher(Channel.SMS, uow, clock).dispatch_one()
    assert delivery(uow, Channel.SMS).reason == "customer opted out of sms"

    erased = FakeUnitOfWork()
    await recorded(erased, contact=None)
    await erased.repository.mark_erased("c-1")
    assert await dispatcher(Channel.EMAIL, erased, clock).dispatch_one()
    skipped = delivery(erased, Channel.EMAIL)
    assert (skipped.status, skipped.reason) == (DeliveryStatus.SKIPPED, CONTACT_ERASED)


async def test_transient_failures_are_retried_until_the_budget_is_spent(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    refusing = FakeSender(Channel.SMS, TransientSendError("busy: +39 347 000 1122 later"))
    sms = dispatcher(Channel.SMS, uow, clock, refusing)
    retries = metric("notifications_retries_total", channel="sms")
    assert await sms.dispatch_one()
    assert metric("notifications_retries_total", channel="sms") == retries + 1
    retried = delivery(uow, Channel.SMS)
    assert (retried.status, retried.attempts) == (DeliveryStatus.PENDING, 1)
    assert retried.reason == "attempt 1 failed: busy: [recipient] later"
    assert NOW + timedelta(seconds=1) <= retried.next_attempt_at <= NOW + timedelta(seconds=2)

    for _ in range(2):
        clock.now = delivery(uow, Channel.SMS).next_attempt_at
        assert await sms.dispatch_one()
    failed = delivery(uow, Channel.SMS)
    assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 3)
    assert failed.reason == "gave up after 3 attempts: busy: [recipient] later"


async def test_a_permanent_refusal_fails_at_once(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    refusing = FakeSender(Channel.EMAIL, PermanentSendError("550 <anna@example.com>: unknown"))
    assert await dispatcher(Channel.EMAIL, uow, clock, refusing).dispatch_one()
    failed = delivery(uow, Channel.EMAIL)
    assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 1)
    assert failed.reason == "550 <[recipient]>: unknown"


async def test_an_unforeseen_failure_rolls_back_and_names_no_recipient(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    before = delivery(uow, Channel.SMS)
    broken = FakeSender(Channel.SMS, RuntimeError("bad reply for +393470001122"))
    with pytest.raises(UnexpectedProviderError, match=r"bad reply for \[recipient\]"):
        await dispatcher(Channel.SMS, uow, clock, broken).dispatch_one()
    assert delivery(uow, Channel.SMS) == before
    assert uow.commits == 0


def metric(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    assert value is not None, name
    return value


async def test_the_queue_depth_gauge_shows_the_pending_deliveries(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    email = dispatcher(Channel.EMAIL, uow, clock)
    await email.refresh_queue_depth()
    assert metric("notifications_dispatch_queue", channel="email") == 1
    await email.dispatch_one()
    await email.refresh_queue_depth()
    assert metric("notifications_dispatch_queue", channel="email") == 0


def test_email_and_sms_need_a_sender_and_in_app_none() -> None:
    with pytest.raises(ValueError, match="need a sender"):
        Dispatcher(Channel.EMAIL, FakeUnitOfWork(), None, RETRY)
    with pytest.raises(ValueError, match="need none"):
        Dispatcher(Channel.IN_APP, FakeUnitOfWork(), FakeSender(Channel.SMS), RETRY)


async def test_a_committed_delivery_wakes_its_idle_dispatcher_at_once(clock: Clock) -> None:
    doorbell = Doorbell()
    uow = FakeUnitOfWork()
    sms = FakeSender(Channel.SMS)
    stopping = asyncio.Event()
    idle = Dispatcher(Channel.SMS, uow, sms, RETRY, clock, doorbell=doorbell)
    running = asyncio.create_task(idle.run(poll_seconds=3600, stopping=stopping))
    try:
        await asyncio.sleep(0.05)  # it found nothing and sleeps: the next poll is an hour away
        assert sms.sent == []
        await recorded(uow)
        doorbell.ring([Channel.EMAIL])  # another channel's bell wakes nobody here
        await asyncio.sleep(0.05)
        assert sms.sent == []
        doorbell.ring([Channel.SMS])
        for _ in range(500):
            if sms.sent:
                break
            await asyncio.sleep(0.01)
        assert len(sms.sent) == 1
    finally:
        stopping.set()
        await running
