"""Command handlers of the notifications service: what its API asks it to do.

Customers (or managers) mark in-app messages read and dismiss them, each the first time only;
the orders service has sign-in codes sent at once. The table at the end, ``COMMAND_HANDLERS``,
names every command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifications.domain.commands import Dismiss, MarkRead, SendSignInCode
from notifications.domain.messages import Clock, Message, MessageNotFound, utc_now
from notifications.service_layer.sign_in_codes import CodeMessenger
from notifications.service_layer.unit_of_work import AbstractUnitOfWork
from service_kit.commands import Command
from service_kit.handlers import CommandHandler


@dataclass(frozen=True)
class CommandDependencies:
    """A fresh unit of work per command, the sign-in code senders and the clock."""

    uow: AbstractUnitOfWork
    code_messenger: CodeMessenger
    clock: Clock = utc_now


async def mark_read(command: MarkRead, deps: CommandDependencies) -> Message:
    """Raises MessageNotFound."""
    at = deps.clock()
    async with deps.uow as uow:
        message = await _message(uow, command.customer_id, command.message_id)
        marked = message.mark_read(at)
        if marked != message:
            await uow.repository.save_message(marked)
        await uow.commit()
    return marked


async def dismiss(command: Dismiss, deps: CommandDependencies) -> Message:
    """Raises MessageNotFound."""
    at = deps.clock()
    async with deps.uow as uow:
        message = await _message(uow, command.customer_id, command.message_id)
        dismissed = message.dismiss(at)
        if dismissed != message:
            await uow.repository.save_message(dismissed)
        await uow.commit()
    return dismissed


async def _message(uow: AbstractUnitOfWork, customer_id: str, message_id: int) -> Message:
    message = await uow.repository.message(customer_id, message_id)
    if message is None:
        raise MessageNotFound(message_id)
    return message


async def send_sign_in_code(command: SendSignInCode, deps: CommandDependencies) -> str:
    """Returns the provider's id for the message; raises SendError (see ``CodeMessenger``)."""
    return await deps.code_messenger.send(
        command.channel, command.recipient, command.code, command.expires_in_seconds
    )


COMMAND_HANDLERS: dict[type[Command[Any]], CommandHandler[CommandDependencies]] = {
    MarkRead: mark_read,
    Dismiss: dismiss,
    SendSignInCode: send_sign_in_code,
}
