"""The services' HTTP protocol, on a real uvicorn server and raw sockets: a request's head is
limited in size and in time, and nothing else changes (bodies, pipelining, keep-alive)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, Request

from service_kit import http_server
from service_kit.http_server import HEAD_MAX_BYTES, BoundedHttpToolsProtocol
from tests.support.polling import eventually


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/echo", methods=["GET", "POST"])
    async def echo(request: Request) -> dict[str, int]:
        return {"body_bytes": len(await request.body()), "headers": len(request.headers)}

    return app


@pytest.fixture
async def server(caplog: pytest.LogCaptureFixture) -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    config = uvicorn.Config(
        echo_app(), host="127.0.0.1", port=port, http=BoundedHttpToolsProtocol, log_config=None
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    # uvicorn.Server has no event for it.
    await eventually(lambda: served.started, interval=0.01, what="uvicorn started")
    try:
        yield port
    finally:
        served.should_exit = True
        await task
    # A refusal is a warning; nothing of the server may fail along with it.
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == []


async def exchange(port: int, *parts: bytes, pause: float = 0.0) -> bytes:
    """Send the parts (``pause`` seconds apart) and read until the server closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
        answer = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 2)
            except TimeoutError:
                return answer
            if not chunk:
                return answer
            answer += chunk
    finally:
        writer.close()


# On a test's last request, so that the server closes as soon as it has answered.
CLOSE = b"Connection: close\r\n"


def get(header_bytes: int = 0, *, last: bool = False) -> bytes:
    junk = b"X-Junk: " + b"a" * header_bytes + b"\r\n" if header_bytes else b""
    return b"GET /echo HTTP/1.1\r\nHost: x\r\n" + junk + (CLOSE if last else b"") + b"\r\n"


def post(body: bytes, *, last: bool = False) -> bytes:
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\ncontent-length: %d\r\n" % len(body)
    return head + (CLOSE if last else b"") + b"\r\n" + body


def statuses(answer: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


async def test_a_head_over_the_limit_is_refused_with_431_and_the_connection_closed(
    server: int,
) -> None:
    answer = await exchange(server, get(header_bytes=HEAD_MAX_BYTES + 1000))
    assert statuses(answer) == [431]
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert "at most" in json.loads(body)["detail"]


async def test_many_small_headers_over_the_limit_are_refused_too(server: int) -> None:
    many = b"GET /echo HTTP/1.1\r\nHost: x\r\n" + b"X-a: 12345\r\n" * 5000 + b"\r\n"
    assert statuses(await exchange(server, many)) == [431]


async def test_a_head_of_megabytes_is_refused_before_it_is_all_sent(server: int) -> None:
    # The server closes while the client is still sending: the refusal or a reset, never a 200.
    try:
        answer = await exchange(server, get(header_bytes=50_000_000))
    except ConnectionError:
        return
    assert statuses(answer) == [431]


async def test_heads_within_the_limit_bodies_and_pipelined_requests_are_served(
    server: int,
) -> None:
    big_body = b"x" * (HEAD_MAX_BYTES * 3)  # a body is not a head
    answer = await exchange(
        server, get(header_bytes=HEAD_MAX_BYTES // 2) + post(big_body) + get(last=True)
    )
    assert statuses(answer) == [200, 200, 200]
    assert b'"body_bytes":%d' % len(big_body) in answer


async def test_a_pipelined_head_is_not_charged_with_the_request_before_it(server: int) -> None:
    # One write: a request with a body near the limit, then the head of the next one, sent in
    # two parts; the second request's head is small and must not be refused for the first one.
    second = get(header_bytes=100, last=True)
    answer = await exchange(server, post(b"z" * (HEAD_MAX_BYTES - 100)) + second[:40], second[40:])
    assert statuses(answer) == [200, 200]


async def test_a_head_that_trickles_in_is_refused_with_408(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "HEAD_TIMEOUT_SECONDS", 0.5)
    # A byte at a time, each within uvicorn's keep-alive timeout, the whole far beyond 0.5 s.
    answer = await exchange(server, *(bytes([b]) for b in get()[:20]), pause=0.1)
    assert statuses(answer) == [408]


async def test_a_slow_body_is_not_a_slow_head(server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "HEAD_TIMEOUT_SECONDS", 0.3)
    request = post(b"y" * 8, last=True)
    head, body = request.split(b"\r\n\r\n", 1)
    answer = await exchange(server, head + b"\r\n\r\n", body[:4], body[4:], pause=0.4)
    assert statuses(answer) == [200]
