"""The HTTP protocol every service's uvicorn runs: httptools, with the limits on a request's head
that uvicorn leaves to a reverse proxy.

uvicorn on httptools reads a request head of any size (a 50 MB header was read whole and
answered 200) and waits for it however slowly it comes (each byte resets the keep-alive timer),
so one client could hold memory or connections without end. Here the head of each request must
fit in ``HEAD_MAX_BYTES`` (else ``431``) and arrive within ``HEAD_TIMEOUT_SECONDS`` of its first
byte (else ``408``); either way the connection is closed. The bodies have their own limit
(``service_kit.http.RequestLimits``).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# nginx's default is 4 buffers of 8 KiB; the services' own requests need a few hundred bytes
# (a bearer token, a tracking token, an Idempotency-Key).
HEAD_MAX_BYTES = 32 * 1024
HEAD_TIMEOUT_SECONDS = 30.0
# How long a refused client may go on sending (discarded) before its connection is closed.
REFUSED_GRACE_SECONDS = 2.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http=BoundedHttpToolsProtocol)``."""

    _head_bytes: int | None = None  # bytes of the head being received; None when in no head
    _head_deadline: asyncio.TimerHandle | None = None
    _heads_begun = 0
    _between_requests = True  # the last request ended (or none came yet) and no other began
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a refused request, read only so the refusal is not lost
        begun, between_requests = self._heads_begun, self._between_requests
        super().data_received(data)
        if self._head_bytes is None or self.transport.is_closing():
            return
        # Still in a head after this chunk: every byte of it was the head's if the head began
        # before it, or began it. A head that began after another request's bytes in the same
        # chunk (pipelining) is counted from the next chunk on: never refused for bytes that
        # were not its own, and still limited (to one read more).
        if self._heads_begun == begun or (between_requests and self._heads_begun == begun + 1):
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_MAX_BYTES:
                self._refuse(431, f"the request's head may have at most {HEAD_MAX_BYTES} bytes")

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()  # the client read the refusal and is done

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        super().connection_lost(exc)

    # Once refused, the parser's callbacks for whatever it still parses of that read do nothing.

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._heads_begun += 1
        self._between_requests = False
        self._head_bytes = 0
        self._head_deadline = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_too_slow)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._end_head()
        # A head that came within one read was never counted as it arrived: measure it whole.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > HEAD_MAX_BYTES:
            self._refuse(431, f"the request's head may have at most {HEAD_MAX_BYTES} bytes")
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._between_requests = True
        if not self._refused:
            super().on_message_complete()

    def _end_head(self) -> None:
        self._head_bytes = None
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self._refuse(408, f"the request's head did not arrive in {HEAD_TIMEOUT_SECONDS:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self.logger.warning("refused a request: %s", detail)
        body = json.dumps({"detail": detail}).encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self._end_head()
        # Closing with the client's bytes unread would reset the connection, and the client
        # could lose the answer: end the sending side, keep discarding what still comes, and
        # close when the client does, or after a grace period.
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(REFUSED_GRACE_SECONDS, self.transport.close)
