"""The command bus and the binding of event handlers (service_kit.handlers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from eventing.cloudevents_kafka import Envelope
from eventing.consumer import ReceivedEvent, Tombstone
from eventing.events import EventData
from service_kit.commands import Command
from service_kit.handlers import (
    CommandBus,
    EventHandler,
    TombstoneHandler,
    UnknownCommand,
    subscriptions,
    tombstone_subscriptions,
)


@dataclass(frozen=True)
class Add(Command[int]):
    amount: int


@dataclass(frozen=True)
class Forget(Command[None]):
    pass


class Counted(EventData):
    # No event_type of its own: declaring one would register the type for the whole test session
    # (the schema documents list every registered type).
    amount: int


async def add(command: Add, total: list[int]) -> int:
    total.append(command.amount)
    return sum(total)


async def test_a_command_runs_its_one_handler_with_fresh_dependencies() -> None:
    made: list[list[int]] = []

    def dependencies() -> list[int]:
        made.append([10])
        return made[-1]

    bus = CommandBus({Add: add}, dependencies)
    assert await bus.handle(Add(5)) == 15
    assert await bus.handle(Add(1)) == 11  # a second, fresh list
    assert made == [[10, 5], [10, 1]]
    with pytest.raises(UnknownCommand, match="Forget"):
        await bus.handle(Forget())


async def test_event_and_tombstone_handlers_get_the_bound_dependencies() -> None:
    seen: list[Any] = []

    async def count(_: Any, event: ReceivedEvent[Counted], into: list[Any]) -> None:
        into.append(event.data.amount)

    async def forget(_: Any, tombstone: Tombstone, into: list[Any]) -> None:
        into.append(tombstone.key)

    [subscription] = subscriptions([EventHandler("test.count", Counted, count)], seen)
    assert (subscription.name, subscription.event) == ("test.count", Counted)
    envelope = Envelope(id="e-1", type="test.counted.v1", source="test", data={"amount": 3})
    event = ReceivedEvent(Counted(amount=3), envelope, topic="counts", partition=0, offset=0)
    await subscription.handler(None, event)  # type: ignore[arg-type]

    [tombstone] = tombstone_subscriptions(
        [TombstoneHandler("test.forget", "counts", forget)], seen, lambda topic: "t1." + topic
    )
    assert (tombstone.name, tombstone.topic) == ("test.forget", "t1.counts")
    gone = Tombstone(key="k-1", id="t-1", topic="t1.counts", partition=0, offset=1)
    await tombstone.handler(None, gone)  # type: ignore[arg-type]
    assert seen == [3, "k-1"]
