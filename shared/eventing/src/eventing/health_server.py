"""A minimal HTTP endpoint for processes without a web framework (the outbox relay).

Serves ``/metrics`` (Prometheus text format), ``/healthz`` (the process is alive) and ``/readyz``
(the readiness callback says it can do its work).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST

from eventing import metrics

__all__ = ["ReadinessCheck", "serve_health"]

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]


async def serve_health(host: str, port: int, readiness: ReadinessCheck) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (
                b"\r\n",
                b"\n",
                b"",
            ):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, content_type, body = 200, CONTENT_TYPE_LATEST, metrics.exposition()
            elif path == "/healthz":
                status, content_type, body = 200, "text/plain", b"ok\n"
            elif path == "/readyz":
                ready, reason = await readiness()
                status, content_type, body = (
                    (200 if ready else 503),
                    "text/plain",
                    f"{reason}\n".encode(),
                )
            else:
                status, content_type, body = 404, "text/plain", b"not found\n"
            reason_phrase = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason_phrase}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
