"""The email sender against a real SMTP server (aiosmtpd, in this process): one session carries
many messages, and a session the server dropped, or a server that was down, costs no message."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from notifications.adapters.providers import SmtpEmailSender, message_id
from notifications.adapters.sinks import SmtpSink
from notifications.service_layer.ports import Outgoing, TransientSendError
from notifications.settings import NotificationsSettings


class CountingSmtpSink(SmtpSink):
    """Records which SMTP session (connection) carried each message, and can drop them all."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port=port)
        self.sessions: list[int] = []
        self._servers: list[SMTP] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sessions.append(id(session))
        self._servers.append(server)
        return await super().handle_DATA(server, session, envelope)

    def drop_connections(self) -> None:
        """What an idle timeout or a restart does to an open session: the server hangs up."""
        for server in self._servers:
            if server.transport is not None:
                server.transport.close()


def settings(port: int, **values: Any) -> NotificationsSettings:
    # The sender reads only the SMTP settings; no database is involved.
    return NotificationsSettings(database_url="postgresql+asyncpg://-/-", smtp_port=port, **values)


def outgoing() -> Outgoing:
    return Outgoing(str(uuid.uuid4()), "luigi@example.com", "Your order", "Ciao!")


async def test_one_session_carries_many_messages_and_a_dropped_one_is_replaced() -> None:
    sink = CountingSmtpSink()
    await sink.start()
    sender = SmtpEmailSender(settings(sink.port))
    try:
        first = [outgoing() for _ in range(5)]
        for message in first:
            assert await sender.send(message) == message_id(message.idempotency_key)
        assert len(set(sink.sessions)) == 1

        sink.drop_connections()
        after_drop = [outgoing() for _ in range(3)]
        for message in after_drop:
            await sender.send(message)  # no error: the first finds the session gone, reconnects
        assert len(set(sink.sessions)) == 2
        assert [r.message_id for r in sink.received] == [
            message_id(m.idempotency_key) for m in first + after_drop
        ]  # each once, in order
    finally:
        await sender.close()
        await sink.stop()


async def test_a_server_that_is_down_is_a_transient_failure_and_sending_resumes() -> None:
    sink = CountingSmtpSink()
    await sink.start()
    port = sink.port
    sender = SmtpEmailSender(settings(port, smtp_timeout_seconds=2))
    try:
        await sender.send(outgoing())
        sink.drop_connections()
        await sink.stop()
        with pytest.raises(TransientSendError):
            await sender.send(outgoing())

        sink = CountingSmtpSink(port=port)
        await sink.start()
        message = outgoing()
        await sender.send(message)
        assert [r.message_id for r in sink.received] == [message_id(message.idempotency_key)]
    finally:
        await sender.close()
        await sink.stop()
