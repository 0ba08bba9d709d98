"""Sending a sign-in code for the orders service: straight to the provider, once, kept nowhere.

Each channel has a sender of its own, apart from the dispatchers' (an SMTP session carries one
message at a time, and a code must not wait behind a queue of order notices); a lock keeps
concurrent codes of one channel in turn on it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from notifications.adapters import metrics
from notifications.domain.messages import Channel
from notifications.domain.privacy import without_recipient
from notifications.domain.sign_in_codes import code_message, without_code
from notifications.service_layer.ports import Outgoing, Sender, SendError, TransientSendError

log = logging.getLogger("notifications.sign_in_codes")


class CodeMessenger:
    def __init__(self, senders: dict[Channel, Sender]) -> None:
        if set(senders) - {Channel.SMS, Channel.EMAIL}:
            raise ValueError("sign-in codes go by sms or email only")
        self._senders = senders
        self._locks = {channel: asyncio.Lock() for channel in senders}

    async def send(
        self, channel: Channel, recipient: str, code: str, expires_in_seconds: int
    ) -> str:
        """Send the code; returns the provider's id for the message.

        Raises ``SendError`` with a reason that names neither the recipient nor the code.
        """
        sender = self._senders[channel]
        message = code_message(channel, code, expires_in_seconds)
        # A fresh key per code: a new code is a new message, never a resend of an older one.
        outgoing = Outgoing(str(uuid.uuid4()), recipient, message.subject, message.body)
        try:
            async with self._locks[channel]:
                provider_id = await sender.send(outgoing)
        except SendError as error:
            failure: SendError = error
        except Exception as error:  # noqa: BLE001 - re-raised below, in words fit for the log
            failure = TransientSendError(f"{type(error).__name__}: {error}")
        else:
            metrics.sign_in_code(channel, "sent")
            log.info("sign-in code by %s sent (%s)", channel.value, provider_id)
            return provider_id
        reason = without_code(without_recipient(failure.reason, recipient), code)
        metrics.sign_in_code(channel, "failed" if failure.retriable else "refused")
        log.warning("sign-in code by %s not sent: %s", channel.value, reason)
        # Without its cause: a traceback would print the cause's text as it is.
        raise type(failure)(reason) from None

    async def close(self) -> None:
        for sender in self._senders.values():
            await sender.close()
