"""The two tables that say what a service does: ``COMMAND_HANDLERS`` and ``EVENT_HANDLERS``.

Every service keeps them in ``service_layer/commands.py`` and ``service_layer/events.py``, each
module ending in its table, so opening the two files shows every command and event the service
handles. A handler is a plain async function that takes the message and the service's
dependencies (its unit of work, outbox, policy...); ``bootstrap.py`` binds the dependencies:

* ``CommandBus(COMMAND_HANDLERS, dependencies)``: ``await bus.handle(ConfirmOrder(...))`` runs
  the one handler of that command type with fresh dependencies and returns its result, typed by
  the command (``class ConfirmOrder(Command[Order])``). Errors propagate to the caller.
* ``subscriptions(EVENT_HANDLERS, dependencies)``: the consumer runtime's subscriptions, one per
  handler, each applying its events inside the runtime's transaction. An event type may have
  several handlers; each one's ``name`` keys its inbox rows, so a name never changes.
* ``tombstone_subscriptions(TOMBSTONE_HANDLERS, dependencies, topic_of)``: the same for the
  "forget this key" records of compacted topics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from eventing.consumer import ReceivedEvent, Subscription, Tombstone, TombstoneSubscription
from eventing.events import EventData
from service_kit.commands import Command

Result = TypeVar("Result")
Dependencies = TypeVar("Dependencies")
Event = TypeVar("Event", bound=EventData)


class UnknownCommand(LookupError):
    """No handler is listed for this command type (a programming error, not bad input)."""


CommandHandler = Callable[[Any, Dependencies], Awaitable[Any]]


class CommandBus(Generic[Dependencies]):
    """Runs a command's one handler with dependencies made for that command."""

    def __init__(
        self,
        handlers: Mapping[type[Command[Any]], CommandHandler[Dependencies]],
        dependencies: Callable[[], Dependencies],
    ) -> None:
        self._handlers = dict(handlers)
        self._dependencies = dependencies

    async def handle(self, command: Command[Result]) -> Result:
        try:
            handler = self._handlers[type(command)]
        except KeyError:
            raise UnknownCommand(type(command).__name__) from None
        return cast(Result, await handler(command, self._dependencies()))


@dataclass(frozen=True)
class EventHandler(Generic[Event, Dependencies]):
    """``handle`` applies events of type ``event``; ``name`` keys its inbox rows."""

    name: str
    event: type[Event]
    handle: Callable[[AsyncSession, ReceivedEvent[Event], Dependencies], Awaitable[None]]


@dataclass(frozen=True)
class TombstoneHandler(Generic[Dependencies]):
    """``handle`` applies the tombstones of the topic ``bootstrap`` names for ``topic``."""

    name: str
    topic: str
    handle: Callable[[AsyncSession, Tombstone, Dependencies], Awaitable[None]]


def subscriptions(
    handlers: Iterable[EventHandler[Any, Dependencies]], dependencies: Dependencies
) -> list[Subscription]:
    """The consumer runtime's subscriptions: each handler with ``dependencies`` bound."""

    def bound(handler: EventHandler[Any, Dependencies]) -> Subscription:
        async def apply(session: AsyncSession, event: ReceivedEvent[Any]) -> None:
            await handler.handle(session, event, dependencies)

        return Subscription(handler.name, handler.event, apply)

    return [bound(handler) for handler in handlers]


def tombstone_subscriptions(
    handlers: Iterable[TombstoneHandler[Dependencies]],
    dependencies: Dependencies,
    topic_of: Callable[[str], str] = lambda topic: topic,
) -> list[TombstoneSubscription]:
    """The same for tombstones; ``topic_of`` maps a handler's topic to the deployed name (a
    prefixed topic in tests or a shared cluster)."""

    def bound(handler: TombstoneHandler[Dependencies]) -> TombstoneSubscription:
        async def apply(session: AsyncSession, tombstone: Tombstone) -> None:
            await handler.handle(session, tombstone, dependencies)

        return TombstoneSubscription(handler.name, topic_of(handler.topic), apply)

    return [bound(handler) for handler in handlers]
