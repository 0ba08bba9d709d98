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
from notifications.service_layer.ports import Outgoing, PermanentSendError, TransientSendError
from tests.unit.notifications.fakes import NOW, FakeRepository, FakeSender, FakeUnitOfWork

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
    return Dispatcher(channel, uow.repository, sender, RETRY, clock)


def delivery(uow: FakeUnitOfWork, channel: Channel) -> Delivery:
    return uow.repository.delivery(channel)


async def test_an_in_app_message_is_written_with_its_delivery_sent(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow, contact=None)  # in-app messages need no contact
    assert await dispatcher(Channel.IN_APP, uow, clock).dispatch_due()
    [message] = uow.repository.messages.values()
    assert (message.customer_id, message.kind, message.body) == (
        "c-1",
        Kind.ORDER_RECEIVED,
        "We received your order o-1 (1 pizza, 9.50 EUR). Thank you!",
    )
    sent = delivery(uow, Channel.IN_APP)
    assert (sent.status, sent.sent_at, sent.attempts) == (DeliveryStatus.SENT, NOW, 0)
    # The lease, then the message with its delivery's sent mark, in one statement.
    assert uow.repository.queue_calls == ["lease_due", "send_in_app"]
    assert not await dispatcher(Channel.IN_APP, uow, clock).dispatch_due()  # nothing else due


async def test_an_email_goes_to_the_contact_with_the_deliverys_key(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    sender = FakeSender(Channel.EMAIL)
    assert await dispatcher(Channel.EMAIL, uow, clock, sender).dispatch_due()
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
    assert await sms.dispatch_due()
    waiting = delivery(uow, Channel.SMS)
    assert (waiting.status, waiting.reason) == (DeliveryStatus.PENDING, "waiting: order not known")
    assert waiting.next_attempt_at == NOW + timedelta(seconds=1)

    await uow.repository.remember_order("o-1", "c-1", "delivery", None)
    clock.now += timedelta(seconds=1)
    assert await sms.dispatch_due()
    waiting = delivery(uow, Channel.SMS)
    assert (waiting.customer_id, waiting.reason) == (
        "c-1",
        "waiting: no contact details for the customer",
    )

    clock.now = NOW + WAIT
    assert await sms.dispatch_due()
    skipped = delivery(uow, Channel.SMS)
    assert (skipped.status, skipped.reason) == (
        DeliveryStatus.SKIPPED,
        "no contact details for the customer",
    )


async def test_an_erased_customer_or_an_opt_out_is_skipped_at_once(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow, contact=Contact("c-1", "Anna", "anna@example.com", None, sms_opt_in=False))
    assert await dispatcher(Channel.SMS, uow, clock).dispatch_due()
    assert delivery(uow, Channel.SMS).reason == "customer opted out of sms"

    erased = FakeUnitOfWork()
    await recorded(erased, contact=None)
    await erased.repository.mark_erased("c-1")
    assert await dispatcher(Channel.EMAIL, erased, clock).dispatch_due()
    skipped = delivery(erased, Channel.EMAIL)
    assert (skipped.status, skipped.reason) == (DeliveryStatus.SKIPPED, CONTACT_ERASED)


async def test_transient_failures_are_retried_until_the_budget_is_spent(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    refusing = FakeSender(Channel.SMS, TransientSendError("busy: +39 347 000 1122 later"))
    sms = dispatcher(Channel.SMS, uow, clock, refusing)
    retries = metric("notifications_retries_total", channel="sms")
    assert await sms.dispatch_due()
    assert metric("notifications_retries_total", channel="sms") == retries + 1
    retried = delivery(uow, Channel.SMS)
    assert (retried.status, retried.attempts) == (DeliveryStatus.PENDING, 1)
    assert retried.reason == "attempt 1 failed: busy: [recipient] later"
    assert NOW + timedelta(seconds=1) <= retried.next_attempt_at <= NOW + timedelta(seconds=2)

    for _ in range(2):
        clock.now = delivery(uow, Channel.SMS).next_attempt_at
        assert await sms.dispatch_due()
    failed = delivery(uow, Channel.SMS)
    assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 3)
    assert failed.reason == "gave up after 3 attempts: busy: [recipient] later"


async def test_a_permanent_refusal_fails_at_once(clock: Clock) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    refusing = FakeSender(Channel.EMAIL, PermanentSendError("550 <anna@example.com>: unknown"))
    assert await dispatcher(Channel.EMAIL, uow, clock, refusing).dispatch_due()
    failed = delivery(uow, Channel.EMAIL)
    assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 1)
    assert failed.reason == "550 <[recipient]>: unknown"


async def test_an_unforeseen_failure_releases_the_batch_and_names_no_recipient(
    clock: Clock,
) -> None:
    uow = FakeUnitOfWork()
    await recorded(uow)
    before = delivery(uow, Channel.SMS)
    broken = FakeSender(Channel.SMS, RuntimeError("bad reply for +393470001122"))
    with pytest.raises(UnexpectedProviderError, match=r"bad reply for \[recipient\]"):
        await dispatcher(Channel.SMS, uow, clock, broken).dispatch_due()
    # Leased, then released: due again at once, as it was, for the loop's next try.
    assert delivery(uow, Channel.SMS) == before
    assert uow.repository.queue_calls == ["lease_due", "release"]


async def orders_received(uow: FakeUnitOfWork, count: int) -> None:
    policy = Policy(contact_wait=WAIT, clock=lambda: NOW)
    for n in range(count):
        notice = Notice(Kind.ORDER_RECEIVED, f"o-{n}", {"short_id": f"o-{n}", "pizzas": "1 pizza",
                                                        "total": "9.50 EUR"})  # fmt: skip
        await uow.repository.add_deliveries(deliveries_for(f"e-{n}", notice, "c-1", policy))
    await uow.repository.save_contact(ANNA, NOW)


def emails(uow: FakeUnitOfWork) -> list[Delivery]:
    return uow.repository.of(lambda d: d.channel is Channel.EMAIL)


async def test_a_batch_is_leased_in_one_statement_and_each_outcome_written_after_its_send(
    clock: Clock,
) -> None:
    uow = FakeUnitOfWork()
    await orders_received(uow, 5)
    sender = FakeSender(Channel.EMAIL)
    email = Dispatcher(Channel.EMAIL, uow.repository, sender, RETRY, clock, batch_size=3)
    assert await email.dispatch_due() == 3
    # One statement for the lease, then one outcome per send.
    assert uow.repository.queue_calls == ["lease_due"] + ["finish"] * 3
    assert [d.status for d in emails(uow)] == [DeliveryStatus.SENT] * 3 + [
        DeliveryStatus.PENDING
    ] * 2
    assert [o.idempotency_key for o in sender.sent] == [d.idempotency_key for d in emails(uow)[:3]]
    assert await email.dispatch_due() == 2
    assert not await email.dispatch_due()
    assert {d.status for d in emails(uow)} == {DeliveryStatus.SENT}


async def test_what_one_dispatcher_leased_no_other_takes_until_the_lease_ends(
    clock: Clock,
) -> None:
    uow = FakeUnitOfWork()
    await orders_received(uow, 2)
    lease = timedelta(seconds=60)
    # The first instance leases both and dies before sending: its lease is all that is left.
    await uow.repository.lease_due(Channel.EMAIL, NOW, NOW + lease, 20)
    other = FakeSender(Channel.EMAIL)
    second = Dispatcher(Channel.EMAIL, uow.repository, other, RETRY, clock, lease=lease)
    clock.now = NOW + lease - timedelta(microseconds=1)
    assert not await second.dispatch_due()
    clock.now = NOW + lease
    assert await second.dispatch_due() == 2
    assert len(other.sent) == 2


class SlowSender(FakeSender):
    """Accepts each message after ``seconds`` of the test's clock (and ``wait`` of real time)."""

    def __init__(self, clock: Clock, seconds: float, wait: float = 0.0) -> None:
        super().__init__(Channel.EMAIL)
        self._clock, self._seconds, self._wait = clock, seconds, wait

    async def send(self, message: Outgoing) -> str:
        await asyncio.sleep(self._wait)
        self._clock.now += timedelta(seconds=self._seconds)
        return await super().send(message)


async def test_no_send_begins_once_half_the_lease_is_spent_and_the_rest_is_released(
    clock: Clock,
) -> None:
    uow = FakeUnitOfWork()
    await orders_received(uow, 4)
    slow = SlowSender(clock, seconds=20)
    email = Dispatcher(
        Channel.EMAIL, uow.repository, slow, RETRY, clock, lease=timedelta(seconds=60)
    )
    assert await email.dispatch_due() == 4
    # Sends begin at +0 s and +20 s; at +40 s less than half of the 60 s lease is left.
    assert len(slow.sent) == 2
    assert [d.status for d in emails(uow)] == [DeliveryStatus.SENT] * 2 + [
        DeliveryStatus.PENDING
    ] * 2
    assert [d.next_attempt_at for d in emails(uow)[2:]] == [NOW + timedelta(seconds=40)] * 2


async def test_a_send_without_an_answer_within_a_quarter_of_the_lease_is_a_transient_failure(
    clock: Clock,
) -> None:
    uow = FakeUnitOfWork()
    await orders_received(uow, 1)
    hanging = SlowSender(clock, seconds=0, wait=3600)
    email = Dispatcher(
        Channel.EMAIL, uow.repository, hanging, RETRY, clock, lease=timedelta(seconds=0.2)
    )
    assert await email.dispatch_due() == 1
    [retried] = emails(uow)
    assert (retried.status, retried.attempts) == (DeliveryStatus.PENDING, 1)
    assert retried.reason == "attempt 1 failed: no answer within 0.1 s"
    assert hanging.closed  # cut off mid-conversation: the next send starts afresh


async def test_a_stopping_dispatcher_sends_no_more_of_its_batch_and_releases_it(
    clock: Clock,
) -> None:
    uow = FakeUnitOfWork()
    await orders_received(uow, 3)
    stopping = asyncio.Event()

    class StopsAfterOne(FakeSender):
        async def send(self, message: Outgoing) -> str:
            stopping.set()
            return await super().send(message)

    sender = StopsAfterOne(Channel.EMAIL)
    assert (
        await Dispatcher(Channel.EMAIL, uow.repository, sender, RETRY, clock).dispatch_due(stopping)
        == 3
    )
    assert len(sender.sent) == 1
    sent, *released = emails(uow)
    assert sent.status is DeliveryStatus.SENT
    assert [(d.status, d.next_attempt_at) for d in released] == [(DeliveryStatus.PENDING, NOW)] * 2


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
    await email.dispatch_due()
    await email.refresh_queue_depth()
    assert metric("notifications_dispatch_queue", channel="email") == 0


def test_email_and_sms_need_a_sender_and_in_app_none() -> None:
    with pytest.raises(ValueError, match="need a sender"):
        Dispatcher(Channel.EMAIL, FakeRepository(), None, RETRY)
    with pytest.raises(ValueError, match="need none"):
        Dispatcher(Channel.IN_APP, FakeRepository(), FakeSender(Channel.SMS), RETRY)


async def test_a_committed_delivery_wakes_its_idle_dispatcher_at_once(clock: Clock) -> None:
    doorbell = Doorbell()
    uow = FakeUnitOfWork()
    sms = FakeSender(Channel.SMS)
    stopping = asyncio.Event()
    idle = Dispatcher(Channel.SMS, uow.repository, sms, RETRY, clock, doorbell=doorbell)
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


async def test_after_a_short_batch_the_dispatcher_waits_for_the_bell_without_looking_again(
    clock: Clock,
) -> None:
    doorbell = Doorbell()
    uow = FakeUnitOfWork()
    await recorded(uow)
    sms = FakeSender(Channel.SMS)
    stopping = asyncio.Event()
    dispatcher = Dispatcher(Channel.SMS, uow.repository, sms, RETRY, clock, doorbell=doorbell)
    running = asyncio.create_task(dispatcher.run(poll_seconds=3600, stopping=stopping))
    try:
        for _ in range(500):
            if sms.sent:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        # One lease found the one delivery due; no second look until something rings.
        assert uow.repository.queue_calls == ["lease_due", "finish"]
    finally:
        stopping.set()
        await running
