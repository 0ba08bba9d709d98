"""Development and test sinks: a real SMTP server and a Twilio-style HTTP SMS receiver.

``python -m notifications.adapters.sinks --smtp-port 2525 --sms-port 8025 --dir .local/stack/sinks``
runs both until SIGTERM/SIGINT and appends what they receive, one JSON object a line, to
``emails.jsonl`` and ``sms.jsonl`` in ``--dir`` (deploy/local/stack.sh starts it for ``make up``).
Tests run them in their own event loop and read ``received`` directly.

They behave like the receivers we rely on: the SMS receiver answers a repeated
``Idempotency-Key`` with the first message's sid and does not deliver it again, and it can be told
to fail (HTTP 503) for a while. The SMTP sink accepts everything; a resend of a message shows as a
second receipt of the same ``Message-ID``. Both can be told to refuse a recipient, and then answer
as real providers do, naming it (``550 5.1.1 <address>: Recipient address rejected``, a
Twilio-style 21211 error quoting the number).

What they receive is what a provider would: recipients and texts, in ``emails.jsonl`` and
``sms.jsonl``. Their log lines name no recipient and carry no text, only ids.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import email
import email.policy
import json
import logging
import signal
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("notifications.sinks")


@dataclass(frozen=True)
class ReceivedEmail:
    message_id: str
    sender: str
    recipients: list[str]
    subject: str
    body: str
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass(frozen=True)
class ReceivedSms:
    idempotency_key: str
    sid: str
    account_sid: str
    to: str
    sender: str
    body: str
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def _append(path: Path | None, record: Any) -> None:
    if path is not None:
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(record)) + "\n")


class SmtpSink:
    """An SMTP server (aiosmtpd) on ``host:port`` (0: any free port) recording every message."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, record_to: Path | None = None):
        self.host = host
        self.port = port
        self.received: list[ReceivedEmail] = []
        self.refused_addresses: set[str] = set()  # lower case; answered 550
        self._record_to = record_to
        self._server: asyncio.AbstractServer | None = None

    def refuse(self, address: str) -> None:
        """Refuse ``address`` as an unknown mailbox, as a receiving server would."""
        self.refused_addresses.add(address.lower())

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self.refused_addresses:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        message = email.message_from_bytes(
            raw if isinstance(raw, bytes) else raw.encode(), policy=email.policy.default
        )
        body = message.get_body(preferencelist=("plain",))
        received = ReceivedEmail(
            message_id=str(message.get("Message-ID", "")).strip(),
            sender=str(envelope.mail_from),
            recipients=[str(r) for r in envelope.rcpt_tos],
            subject=str(message.get("Subject", "")),
            body=body.get_content() if body is not None else "",
        )
        self.received.append(received)
        _append(self._record_to, received)
        log.info("email %s accepted", received.message_id)
        return "250 Message accepted for delivery"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="mario-sink"), host=self.host, port=self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    def by_message_id(self) -> dict[str, list[ReceivedEmail]]:
        grouped: dict[str, list[ReceivedEmail]] = {}
        for received in self.received:
            grouped.setdefault(received.message_id, []).append(received)
        return grouped


class SmsSink:
    """A Twilio-style SMS API: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form fields
    To, From, Body; basic auth; ``Idempotency-Key`` header)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        record_to: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.delivered: dict[str, ReceivedSms] = {}  # by idempotency key: what customers got
        self.posts = 0  # every accepted POST, a repeated key included
        self.refused = 0  # POSTs answered 503 while failing
        self.refused_numbers: set[str] = set()  # answered 400, as numbers that cannot get SMS
        self._fail_until = 0.0
        self._record_to = record_to
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.app = Starlette(
            routes=[
                Route(
                    "/2010-04-01/Accounts/{account_sid}/Messages.json",
                    self._receive,
                    methods=["POST"],
                )
            ]
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/2010-04-01/Accounts/{{account_sid}}/Messages.json"

    def fail_for(self, seconds: float) -> None:
        """Answer 503 to every POST for ``seconds`` from now."""
        self._fail_until = time.monotonic() + seconds

    def refuse(self, number: str) -> None:
        """Answer 400 for ``number`` (spaces and dashes ignored), as for an invalid number."""
        self.refused_numbers.add(_compact(number))

    @property
    def failing(self) -> bool:
        return time.monotonic() < self._fail_until

    def _authorised(self, request: Request, account_sid: str) -> bool:
        if self.account_sid is None:
            return True
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return account_sid == user == self.account_sid and password == self.auth_token

    async def _receive(self, request: Request) -> JSONResponse:
        account_sid = request.path_params["account_sid"]
        if not self._authorised(request, account_sid):
            return JSONResponse({"message": "authentication failed"}, status_code=401)
        if self.failing:
            self.refused += 1
            return JSONResponse({"message": "service unavailable"}, status_code=503)
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        missing = [name for name in ("To", "From", "Body") if not form.get(name)]
        if missing:
            return JSONResponse({"message": f"missing {', '.join(missing)}"}, status_code=400)
        if _compact(form["To"]) in self.refused_numbers:
            # What Twilio answers: the number, as given, in the message.
            return JSONResponse(
                {
                    "code": 21211,
                    "message": f"Invalid 'To' Phone Number: {form['To']}",
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                    "status": 400,
                },
                status_code=400,
            )
        key = request.headers.get("idempotency-key") or form.get("IdempotencyKey") or ""
        self.posts += 1
        known = self.delivered.get(key) if key else None
        if known is not None:  # a resend: the provider answers as before and sends nothing
            return JSONResponse({"sid": known.sid, "status": "queued"}, status_code=200)
        received = ReceivedSms(
            idempotency_key=key,
            sid=f"SM{uuid.uuid4().hex}",
            account_sid=account_sid,
            to=form["To"],
            sender=form["From"],
            body=form["Body"],
        )
        self.delivered[key or received.sid] = received
        _append(self._record_to, received)
        log.info("sms %s accepted", received.sid)
        return JSONResponse({"sid": received.sid, "status": "queued"}, status_code=201)

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # asyncio sets TCP_NODELAY only on sockets whose proto says TCP, which this one's (0)
        # does not; without it each answer's second write waited for the client's delayed ACK,
        # about 44 ms a message (0.4 ms with it, measured against the dispatcher's client).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._task, timeout=10)


def _compact(number: str) -> str:
    return "".join(character for character in number if character.isdigit() or character == "+")


async def _serve(args: argparse.Namespace, directory: Path) -> None:
    smtp = SmtpSink(args.host, args.smtp_port, record_to=directory / "emails.jsonl")
    sms = SmsSink(args.host, args.sms_port, record_to=directory / "sms.jsonl")
    await smtp.start()
    await sms.start()
    log.info("SMTP sink on %s:%d, SMS sink on %s", args.host, smtp.port, sms.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await sms.stop()
    await smtp.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifications.adapters.sinks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--sms-port", type=int, default=8025)
    parser.add_argument("--dir", default=".local/stack/sinks", help="where received messages go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    asyncio.run(_serve(args, directory))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
