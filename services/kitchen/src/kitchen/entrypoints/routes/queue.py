"""The kitchen display's data: the queue now (``GET /queue``) and as it changes (SSE).

For cooks only (chef or manager): the queue lists every order in the kitchen with its pizzas,
and order ids are what a customer's messages and tracking are looked up by elsewhere. The
display page signs in with a cook's token and sends it with every request; a browser's
``EventSource`` cannot send headers, so the page reads the stream with ``fetch()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter

from eventing.backoff import backoff
from eventing.failpoints import error_point
from eventing.outage import Outage
from kitchen.adapters import queries
from kitchen.bootstrap import KitchenService
from kitchen.entrypoints.deps import CookDep, ServiceDep, cook_responses
from kitchen.entrypoints.schemas import QueueOut
from kitchen.service_layer.broadcast import Wake
from service_kit.auth import Principal
from service_kit.http import SlottedStreamingResponse

router = APIRouter(tags=["queue"])

KEEP_ALIVE = b": keep-alive\n\n"
# One for every stream of the process: an outage is logged once, not once per open display.
QUEUE_READS = Outage(logging.getLogger("kitchen.queue"), "queue stream reads")


async def _queue(service: KitchenService) -> QueueOut:
    return QueueOut.of(await queries.board(service.sessions, service.deps.model.capacity))


@router.get("/queue", response_model=QueueOut, responses=cook_responses())
async def get_queue(service: ServiceDep, _: CookDep) -> QueueOut:
    """Chef or manager: the queue now (queued tickets in queue order, then cooking, then ready
    in the last 30 minutes)."""
    return await _queue(service)


def _stream_seconds(service: KitchenService, cook: Principal) -> float:
    # The token was checked when the stream opened; it must not keep the stream open after it
    # expires. A stream also ends after stream_max_seconds, so none is open for good.
    seconds = service.stream_max_seconds
    expires = cook.claims.get("exp")
    if isinstance(expires, int | float):
        seconds = min(seconds, expires - time.time())
    return max(seconds, 0.0)


async def _messages(service: KitchenService, seconds: float) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + seconds
    failures = 0
    # Subscribe before the first read, so no change between the two can be missed.
    async with service.deps.broadcaster.subscribe() as subscription:
        while True:
            try:
                error_point("kitchen.queue_read")
                queue = await _queue(service)
            except Exception as error:  # noqa: BLE001 - a display outlives a database outage
                # The display keeps what it last showed; the read is tried again shortly.
                failures = QUEUE_READS.failed(error)
                yield KEEP_ALIVE
            else:
                QUEUE_READS.recovered()
                failures = 0
                yield b"event: queue\ndata: " + queue.model_dump_json().encode() + b"\n\n"
            while True:
                left = ends_at - loop.time()
                if left <= 0:
                    return
                pause = (
                    max(0.2, backoff(failures, 0.5, 5.0))
                    if failures
                    else service.stream_keepalive_seconds
                )
                wake = await subscription.wait(min(pause, left))
                if wake is not Wake.TIMEOUT or failures:
                    break
                if loop.time() < ends_at:
                    yield KEEP_ALIVE
            if wake is Wake.CLOSED:
                return


# One event of the stream (OpenAPI 3.1 has ``schema`` describe each event of an event stream).
QUEUE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"const": "queue"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/QueueOut"},
            "description": "The `GET /queue` document.",
        },
    },
}
STREAM_EXAMPLE = (
    'event: queue\ndata: {"capacity": 3, "cooking": 0, "tickets": []}\n\n: keep-alive\n\n'
)


@router.get(
    "/queue/stream",
    response_class=SlottedStreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": QUEUE_EVENT, "example": STREAM_EXAMPLE}},
            "description": "Server-Sent Events: an `event: queue` message whose data is the "
            "`GET /queue` document, on connect and after every change of the kitchen (a "
            "ticket queued, started, ready or withdrawn); a `: keep-alive` comment every 15 s. "
            "The stream ends when the token expires, after `KITCHEN_STREAM_MAX_SECONDS`, or "
            "when the service stops; reconnect with a fresh token.",
        },
        **cook_responses(
            503,
            _503="As many streams are open as the service serves (`KITCHEN_HTTP_MAX_STREAMS`), "
            "or the database is unavailable; retry after `Retry-After`.",
        ),
    },
)
async def stream_queue(service: ServiceDep, cook: CookDep) -> SlottedStreamingResponse:
    """Chef or manager: the queue as it changes, as Server-Sent Events. Each open stream holds
    one of the service's stream slots until it ends."""
    return SlottedStreamingResponse(
        _messages(service, _stream_seconds(service, cook)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
