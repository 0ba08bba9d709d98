"""The commands the API takes, through the command bus, against an in-memory unit of work:
marking messages read and dismissing them (the first time only, the customer's own only) and
sending sign-in codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifications.domain.commands import Dismiss, MarkRead, SendSignInCode
from notifications.domain.messages import Channel, Kind, MessageNotFound
from notifications.service_layer.commands import COMMAND_HANDLERS, CommandDependencies
from notifications.service_layer.ports import PermanentSendError, SendError
from notifications.service_layer.sign_in_codes import CodeMessenger
from service_kit.handlers import CommandBus
from tests.unit.notifications.fakes import NOW, FakeSender, FakeUnitOfWork


class Bench:
    """A command bus over one in-memory repository, with a clock the test moves."""

    def __init__(self, sms: FakeSender | None = None) -> None:
        self.uow = FakeUnitOfWork()
        self.now = NOW
        self.sms = sms or FakeSender(Channel.SMS)
        messenger = CodeMessenger({Channel.SMS: self.sms})
        self.bus = CommandBus(
            COMMAND_HANDLERS,
            lambda: CommandDependencies(self.uow, messenger, clock=lambda: self.now),
        )

    async def message(self, customer_id: str = "c-1") -> int:
        await self.uow.repository.add_message(
            event_id=f"e-{len(self.uow.repository.messages)}",
            order_id="o-1",
            customer_id=customer_id,
            channel=Channel.IN_APP,
            kind=Kind.ORDER_RECEIVED,
            body="We received your order.",
        )
        return max(self.uow.repository.messages)


async def test_a_message_is_marked_read_and_dismissed_the_first_time_only() -> None:
    bench = Bench()
    message_id = await bench.message()
    read = await bench.bus.handle(MarkRead("c-1", message_id))
    assert (read.read_at, read.dismissed_at) == (NOW, None)
    bench.now += timedelta(minutes=1)
    again = await bench.bus.handle(MarkRead("c-1", message_id))
    assert again.read_at == NOW
    dismissed = await bench.bus.handle(Dismiss("c-1", message_id))
    assert (dismissed.read_at, dismissed.dismissed_at) == (NOW, NOW + timedelta(minutes=1))
    assert bench.uow.repository.messages[message_id] == dismissed


async def test_another_customers_message_is_not_found() -> None:
    bench = Bench()
    message_id = await bench.message(customer_id="c-2")
    for command in (MarkRead("c-1", message_id), Dismiss("c-1", message_id)):
        with pytest.raises(MessageNotFound):
            await bench.bus.handle(command)
    assert bench.uow.repository.messages[message_id].read_at is None


async def test_a_sign_in_code_is_sent_at_once_and_kept_nowhere() -> None:
    bench = Bench()
    provider_id = await bench.bus.handle(
        SendSignInCode(Channel.SMS, "+393470001122", "042917", 600)
    )
    [sent] = bench.sms.sent
    assert provider_id == "fake-1"
    assert sent.recipient == "+393470001122" and "042917" in sent.body
    assert bench.uow.repository.deliveries == {}


async def test_a_refused_code_says_why_without_the_code_or_the_number() -> None:
    refusing = FakeSender(Channel.SMS, PermanentSendError("code 042917 to +393470001122: no"))
    bench = Bench(sms=refusing)
    with pytest.raises(SendError) as refused:
        await bench.bus.handle(SendSignInCode(Channel.SMS, "+393470001122", "042917", 600))
    assert not refused.value.retriable
    assert refused.value.reason == "code [code] to [recipient]: no"
