"""The kitchen display's data: the queue now (``GET /queue``) and as it changes (SSE).

Public on purpose: a ticket holds pizzas and times, no personal data, and the display in the
kitchen reads it without logging in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from kitchen.bootstrap import KitchenService
from kitchen.entrypoints.deps import ServiceDep
from kitchen.entrypoints.schemas import QueueOut
from kitchen.service_layer import cooks
from kitchen.service_layer.broadcast import Wake

router = APIRouter(tags=["queue"])

KEEP_ALIVE = b": keep-alive\n\n"


async def _queue(service: KitchenService) -> QueueOut:
    return QueueOut.of(await cooks.board(service.sessions, service.deps))


@router.get("/queue", response_model=QueueOut)
async def get_queue(service: ServiceDep) -> QueueOut:
    """The queue now: queued tickets in queue order, then cooking, then recently ready."""
    return await _queue(service)


async def _messages(service: KitchenService) -> AsyncIterator[bytes]:
    # Subscribe before the first read, so no change between the two can be missed.
    async with service.deps.broadcaster.subscribe() as subscription:
        while True:
            queue = await _queue(service)
            yield b"event: queue\ndata: " + queue.model_dump_json().encode() + b"\n\n"
            while (
                wake := await subscription.wait(service.stream_keepalive_seconds)
            ) is Wake.TIMEOUT:
                yield KEEP_ALIVE
            if wake is Wake.CLOSED:
                return


@router.get(
    "/queue/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: an `event: queue` message whose data is the "
            "`GET /queue` document, on connect and after every change of the kitchen (a "
            "ticket queued, started, ready or withdrawn); a `: keep-alive` comment every 15 s.",
        }
    },
)
async def stream_queue(service: ServiceDep) -> StreamingResponse:
    """The queue as it changes, as Server-Sent Events (for ``EventSource``)."""
    return StreamingResponse(
        _messages(service),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
