"""GET /queue/stream over a real HTTP server: Server-Sent Events on connect and after each change
of the kitchen (from the consumer and from cooks' actions), keep-alive comments in between,
clean disconnects, and a prompt shutdown with a display still connected. Each open stream holds
one of ``KITCHEN_HTTP_MAX_STREAMS`` slots until it ends; it ends when its token expires."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from eventing.failpoints import arm_error, armed_errors, disarm_errors
from kitchen.entrypoints.api import create_app
from service_kit.auth import Role
from service_kit.limits import StreamSlots
from tests.support.eventing import driver_errors
from tests.support.infra import Infra
from tests.support.kitchen import (
    KitchenHarness,
    OrdersTopic,
    cancelled,
    confirmed,
    kitchen_settings,
    new_order_id,
    statuses,
)
from tests.support.polling import eventually
from tests.support.processes import base_url, free_port, service_process
from tests.support.system import migrated_database
from tests.support.tokens import authorization, staff_token

KEEPALIVE = 0.3


class Stream:
    """Reads an SSE response message by message: ("queue", data) or ("comment", text)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = 20) -> tuple[str, Any]:
        block: list[str] = []
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line:
                    block.append(line)
                elif block:
                    break
            else:
                raise EOFError("the stream ended")
        if all(line.startswith(":") for line in block):
            return "comment", "\n".join(line[1:].strip() for line in block)
        fields = dict(line.split(": ", 1) for line in block)
        return fields["event"], json.loads(fields["data"])

    async def until_end(self, timeout: float = 20) -> None:
        """Read on until the server ends the stream (fails if it sends nothing for ``timeout``)."""
        try:
            while True:
                await self.next(timeout)
        except EOFError:
            return

    async def next_queue(self, timeout: float = 20) -> dict[str, Any]:
        """The next queue message, skipping keep-alive comments."""
        while True:
            kind, data = await self.next(timeout)
            if kind == "queue":
                queue: dict[str, Any] = data
                return queue
            assert (kind, data) == ("comment", "keep-alive")


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` on a real uvicorn server on a free port (in this process)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        return bool(server.started)

    await eventually(started, interval=0.05, what="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


async def kitchen_app(infra: Infra, orders_topic: OrdersTopic, **settings: Any) -> Any:
    """The kitchen's app on a fresh database; ``settings`` as ``kitchen_settings`` takes them."""
    url = await migrated_database(infra, "kitchen")
    return create_app(kitchen_settings(infra, url, orders_topic, **settings))


async def test_the_stream_sends_the_queue_on_connect_and_after_every_change(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    app = await kitchen_app(infra, orders_topic, stream_keepalive_seconds=KEEPALIVE)
    order_id = new_order_id()
    chef = KitchenHarness.token(Role.CHEF)
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as client:
        broadcaster = app.state.service.deps.broadcaster
        slots: StreamSlots = app.state.stream_slots
        async with client.stream("GET", "/queue/stream", headers=chef) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            stream = Stream(response)

            kind, first = await stream.next()
            assert kind == "queue"
            assert first == (await client.get("/queue", headers=chef)).json()
            assert first == {"capacity": 3, "cooking": 0, "tickets": []}

            # Between changes only keep-alive comments arrive: nothing polls the database.
            deadline = time.monotonic() + 4 * KEEPALIVE
            while time.monotonic() < deadline:
                assert await stream.next(timeout=5) == ("comment", "keep-alive")

            await orders_topic.publish(confirmed(order_id))  # a change made by the consumer
            queued = await stream.next_queue()
            assert statuses(queued["tickets"]) == [(order_id, "queued")]
            assert queued == (await client.get("/queue", headers=chef)).json()

            for step, status in (("start", "cooking"), ("ready", "ready")):  # cooks' actions
                answer = await client.post(f"/tickets/{order_id}/{step}", headers=chef)
                assert answer.status_code == 200, answer.text
                message = await stream.next_queue()
                assert statuses(message["tickets"]) == [(order_id, status)]
                assert message["cooking"] == (1 if status == "cooking" else 0)

            other = new_order_id()
            await orders_topic.publish(confirmed(other))
            assert (other, "queued") in statuses((await stream.next_queue())["tickets"])
            await orders_topic.publish(cancelled(other))  # withdrawn: it leaves the queue
            assert statuses((await stream.next_queue())["tickets"]) == [(order_id, "ready")]
            assert broadcaster.subscribers == 1
            assert slots.open == 1

        # The client went away: its subscription and its slot are gone.
        async def subscribers_and_slots() -> tuple[int, int]:
            return int(broadcaster.subscribers), slots.open

        await eventually(
            subscribers_and_slots, until=lambda n: n == (0, 0), timeout=10, what="no subscribers"
        )


async def test_a_stream_outlives_database_errors_and_sends_the_queue_when_they_pass(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    app = await kitchen_app(infra, orders_topic, stream_keepalive_seconds=KEEPALIVE)
    chef = KitchenHarness.token(Role.CHEF)
    arm_error("kitchen.queue_read", *driver_errors())
    try:
        async with (
            serving(app) as base,
            httpx.AsyncClient(base_url=base, timeout=20) as client,
            client.stream("GET", "/queue/stream", headers=chef) as response,
        ):
            assert response.status_code == 200
            stream = Stream(response)
            # One keep-alive per failed read: the display keeps its connection...
            for _ in driver_errors():
                assert await stream.next() == ("comment", "keep-alive")
            # ...and gets the queue as soon as the database answers again.
            assert await stream.next_queue() == {"capacity": 3, "cooking": 0, "tickets": []}
            assert armed_errors("kitchen.queue_read") == 0
            order_id = new_order_id()
            await orders_topic.publish(confirmed(order_id))
            queued = await stream.next_queue()
            assert statuses(queued["tickets"]) == [(order_id, "queued")]
    finally:
        disarm_errors()


async def test_streams_are_independent_and_end_when_the_app_stops(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    app = await kitchen_app(infra, orders_topic, stream_keepalive_seconds=5)
    chef = KitchenHarness.token(Role.CHEF)
    async with (
        serving(app) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
        client.stream("GET", "/queue/stream", headers=chef) as first_response,
    ):
        first = Stream(first_response)
        await first.next_queue()
        async with client.stream("GET", "/queue/stream", headers=chef) as second_response:
            second = Stream(second_response)
            await second.next_queue()
            order_id = new_order_id()
            await orders_topic.publish(confirmed(order_id))
            for stream in (first, second):
                assert statuses((await stream.next_queue())["tickets"]) == [(order_id, "queued")]
        # The second display left; the first still gets changes.
        await orders_topic.publish(cancelled(order_id))
        assert (await first.next_queue())["tickets"] == []
        # The broadcaster closing (as on SIGTERM) ends the stream cleanly.
        app.state.service.deps.broadcaster.close()
        with pytest.raises(EOFError):
            await first.next(timeout=5)
        assert app.state.stream_slots.open == 0


async def test_a_kitchen_with_an_open_stream_stops_promptly_on_sigterm(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    url = await migrated_database(infra, "kitchen")
    process = service_process(
        infra,
        "kitchen",
        url,
        {
            "KITCHEN_ORDERS_TOPIC": orders_topic.name,
            "KITCHEN_CONSUMER_GROUP": f"kitchen-test-{new_order_id()}",
        },
    )
    process.start()
    try:
        await process.wait_ready()
        async with (
            httpx.AsyncClient(base_url=base_url(process), timeout=20) as client,
            client.stream(
                "GET", "/queue/stream", headers=KitchenHarness.token(Role.CHEF)
            ) as response,
        ):
            stream = Stream(response)
            await stream.next_queue()
            started = time.monotonic()
            stopping = asyncio.create_task(asyncio.to_thread(process.terminate, 20))
            try:
                while True:
                    await stream.next(timeout=20)
            except (EOFError, httpx.HTTPError):
                pass
            await stopping
            assert time.monotonic() - started < 15
        assert process.process is not None
        assert process.process.returncode != -9, "had to be killed:\n" + process.log_tail()
    finally:
        process.kill()


async def test_streams_are_capped_and_a_stream_past_the_cap_is_a_503(
    infra: Infra, orders_topic: OrdersTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITCHEN_HTTP_MAX_STREAMS", "2")
    app = await kitchen_app(infra, orders_topic, stream_keepalive_seconds=5)
    chef = KitchenHarness.token(Role.CHEF)
    async with (
        serving(app) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
        client.stream("GET", "/queue/stream", headers=chef) as first,
    ):
        slots: StreamSlots = app.state.stream_slots
        assert slots.capacity == 2
        first_stream = Stream(first)  # kept: a dropped reader closes its connection
        await first_stream.next_queue()
        async with client.stream("GET", "/queue/stream", headers=chef) as second:
            second_stream = Stream(second)
            await second_stream.next_queue()
            refused = await client.get("/queue/stream", headers=chef)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "2 streams are open" in refused.json()["detail"]
            # Credentials are checked first: a full kitchen tells a stranger nothing more.
            assert (await client.get("/queue/stream")).status_code == 401
            assert slots.open == 2
            assert (await client.get("/queue", headers=chef)).status_code == 200  # not a stream
            order_id = new_order_id()
            await orders_topic.publish(confirmed(order_id))
            for stream in (first_stream, second_stream):  # both still open and served
                assert statuses((await stream.next_queue())["tickets"]) == [(order_id, "queued")]

        # The second display left: its slot is free for the next one.
        async def reopened() -> int:
            async with client.stream("GET", "/queue/stream", headers=chef) as again:
                if again.status_code == 200:
                    assert (await Stream(again).next_queue())["tickets"]
                return again.status_code

        await eventually(
            reopened, until=lambda status: status == 200, timeout=10, what="a reopened stream"
        )


async def test_a_stream_ends_when_its_token_expires_and_frees_its_slot(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    app = await kitchen_app(infra, orders_topic, stream_keepalive_seconds=0.5)
    # The token was valid when the stream opened; it must not keep the board flowing after.
    short = staff_token(Role.CHEF, subject="chef-ada", ttl_seconds=2)
    async with (
        serving(app) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
        client.stream("GET", "/queue/stream", headers=authorization(short)) as r,
    ):
        stream = Stream(r)
        await stream.next_queue()
        await stream.until_end()
    assert app.state.stream_slots.open == 0


async def test_a_stream_ends_after_the_longest_a_stream_may_last(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    # However long a token lives, a stream ends after KITCHEN_STREAM_MAX_SECONDS.
    app = await kitchen_app(
        infra, orders_topic, stream_keepalive_seconds=0.5, stream_max_seconds=1.0
    )
    async with (
        serving(app) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
        client.stream("GET", "/queue/stream", headers=KitchenHarness.token(Role.CHEF)) as response,
    ):
        stream = Stream(response)
        await stream.next_queue()
        await stream.until_end()
        assert app.state.stream_slots.open == 0
