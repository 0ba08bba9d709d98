"""The real providers: email over SMTP (aiosmtplib) and SMS over a Twilio-style HTTP API
(aiohttp)."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from email.utils import formatdate

import aiohttp
import aiosmtplib

from notifications.domain.messages import Channel
from notifications.service_layer.ports import Outgoing, PermanentSendError, TransientSendError
from notifications.settings import NotificationsSettings

MESSAGE_ID_DOMAIN = "notifications.mariospizzeria"
RETRIABLE_HTTP = frozenset({408, 409, 425, 429})


def message_id(idempotency_key: str) -> str:
    """The email's Message-ID: the same on every attempt, so receivers can drop a resend."""
    return f"<{idempotency_key}@{MESSAGE_ID_DOMAIN}>"


class SmtpEmailSender:
    """Email over one SMTP session kept open across messages (STARTTLS or implicit TLS).

    A session per message costs a TCP handshake, EHLO, STARTTLS and AUTH every time; the
    dispatcher sends one message at a time, so one session serves it. A session the server has
    dropped meanwhile (idle timeout, restart) is replaced, and the message sent again at once.
    Usually the server hung up while the session was idle and the message never reached it; had
    it hung up after taking the message and before answering, the second copy carries the same
    Message-ID, as in the documented resend window.
    """

    channel = Channel.EMAIL

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._session: aiosmtplib.SMTP | None = None

    async def send(self, message: Outgoing) -> str:
        email = self._email(message)
        try:
            try:
                await self._send_on_session(email, fresh=False)
            except aiosmtplib.SMTPServerDisconnected:
                await self._send_on_session(email, fresh=True)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [response.code for response in error.recipients]
            reason = f"recipient refused: {error}"
            if all(code >= 500 for code in codes):
                raise PermanentSendError(reason) from error
            raise TransientSendError(reason) from error
        except aiosmtplib.SMTPResponseException as error:
            await self.close()  # a 421 or a broken transaction: start the next one afresh
            reason = f"SMTP {error.code}: {error.message}"
            if error.code >= 500:
                raise PermanentSendError(reason) from error
            raise TransientSendError(reason) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await self.close()
            raise TransientSendError(f"{type(error).__name__}: {error}") from error
        return message_id(message.idempotency_key)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and session.is_connected:
            try:
                await session.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                session.close()

    async def _send_on_session(self, email: EmailMessage, *, fresh: bool) -> None:
        if fresh or self._session is None or not self._session.is_connected:
            await self.close()
            settings = self._settings
            session = aiosmtplib.SMTP(
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
                use_tls=settings.smtp_use_tls,
                start_tls=settings.smtp_starttls if not settings.smtp_use_tls else False,
                validate_certs=settings.smtp_validate_certs,
                timeout=settings.smtp_timeout_seconds,
            )
            await session.connect()  # and STARTTLS and AUTH, as configured
            self._session = session
        await self._session.send_message(email)

    def _email(self, message: Outgoing) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._settings.smtp_from
        email["To"] = message.recipient
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False, usegmt=True)
        email["Message-ID"] = message_id(message.idempotency_key)
        email["X-Idempotency-Key"] = message.idempotency_key
        email.set_content(message.body)
        return email


class HttpSmsSender:
    """Twilio-style: form POST (To, From, Body) with basic auth and an idempotency key.

    On aiohttp, with a connection pool of its own, opened at the first message and closed by
    ``close``: a message costs about 0.2 ms of client CPU, where httpx took 1.3 ms (measured side
    by side against one local server on the 2-core bench machine).
    """

    channel = Channel.SMS

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._url = settings.sms_endpoint_url.replace("{account_sid}", settings.sms_account_sid)
        credentials = f"{settings.sms_account_sid}:{settings.sms_auth_token.get_secret_value()}"
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._timeout = aiohttp.ClientTimeout(total=settings.sms_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, message: Outgoing) -> str:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self._url,
                data={
                    "To": message.recipient,
                    "From": self._settings.sms_from_number,
                    "Body": message.body,
                    "IdempotencyKey": message.idempotency_key,
                },
                headers={
                    "Authorization": self._authorization,
                    "Idempotency-Key": message.idempotency_key,
                    "I-Twilio-Idempotency-Token": message.idempotency_key,
                },
            ) as response:
                status, answer = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientSendError(f"{type(error).__name__}: {error}") from error
        if 200 <= status < 300:
            try:
                sid = json.loads(answer).get("sid")
            except (ValueError, AttributeError):  # not JSON, or not an object
                sid = None
            return str(sid or message.idempotency_key)
        reason = f"HTTP {status}: {answer.decode(errors='replace')[:200]}"
        if status >= 500 or status in RETRIABLE_HTTP:
            raise TransientSendError(reason)
        raise PermanentSendError(reason)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
