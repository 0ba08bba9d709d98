"""Under overload a request is refused at once (503, Retry-After) instead of queueing for a
database connection until the pool's timeout; probes and started streams take no place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from service_kit.http import answer_503_when_the_database_is_unavailable
from tests.support.polling import eventually

LIMIT = 2


class Gate:
    """Requests that wait here until opened, like requests waiting for a pooled connection."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = 0

    async def wait(self) -> None:
        self.waiting += 1
        await self.open.wait()


def overloadable_app(gate: Gate, stream_gate: Gate) -> FastAPI:
    app = FastAPI()
    answer_503_when_the_database_is_unavailable(app)
    app.state.max_waiting_requests = LIMIT  # what consuming_lifespan sets from the settings

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await gate.wait()
        return {"status": "done"}

    @app.get("/fast")
    async def fast() -> dict[str, str]:
        return {"status": "done"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            await stream_gate.wait()
            yield b"last\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@contextlib.asynccontextmanager
async def overloadable() -> AsyncIterator[tuple[httpx.AsyncClient, Gate, Gate]]:
    """A client of the app, with the gates its slow requests and its streams wait at."""
    gate, stream_gate = Gate(), Gate()
    transport = httpx.ASGITransport(app=overloadable_app(gate, stream_gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, gate, stream_gate


async def test_beyond_the_limit_requests_are_refused_at_once_and_the_rest_served() -> None:
    async with overloadable() as (client, gate, _):
        waiting = [asyncio.create_task(client.get("/slow")) for _ in range(LIMIT)]
        await eventually(
            lambda: gate.waiting == LIMIT,
            what="the first requests waiting",
            timeout=5,
            interval=0.01,
        )

        refused = await asyncio.wait_for(client.get("/slow"), timeout=2)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["detail"] == "overloaded: 2 requests are waiting; retry later"
        assert (await client.get("/fast")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200  # probes are never refused

        gate.open.set()
        assert [r.status_code for r in await asyncio.gather(*waiting)] == [200] * LIMIT
        assert (await client.get("/fast")).status_code == 200  # their places are free again


async def test_a_started_stream_takes_no_place() -> None:
    async with overloadable() as (client, _, stream_gate):
        streams = [asyncio.create_task(client.get("/stream")) for _ in range(LIMIT)]
        await eventually(
            lambda: stream_gate.waiting == LIMIT,
            what="the first streams started",
            timeout=5,
            interval=0.01,
        )
        # Both are still open, and no longer waiting for their response to start.
        streams.append(asyncio.create_task(client.get("/stream")))
        await eventually(
            lambda: stream_gate.waiting == LIMIT + 1,
            what="one more stream started",
            timeout=5,
            interval=0.01,
        )
        assert (await client.get("/fast")).status_code == 200
        stream_gate.open.set()
        assert [r.text for r in await asyncio.gather(*streams)] == ["first\nlast\n"] * (LIMIT + 1)
