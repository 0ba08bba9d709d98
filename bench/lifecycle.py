"""One order's whole life through the public APIs, as the customer, the kitchen and a driver
would drive it, patient through faults: every step is retried until it took effect.

A retry after an ambiguous failure (connection reset, 5xx, a timeout) must not do the work
twice: placement carries an ``Idempotency-Key``; the other steps are state transitions, so a
409 whose ``current_status`` shows the step already happened counts as success.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.load import TRANSPORT_ERRORS, Http, Reply, Timing
from bench.orders_load import new_order
from service_kit.auth import AuthSettings, Role, mint_token

ORDER_PROGRESS = ["pending", "confirmed", "cooking", "ready", "out_for_delivery", "delivered"]
TICKET_PROGRESS = ["queued", "cooking", "ready"]


def bearer(role: Role, subject: str) -> dict[str, str]:
    token = mint_token(AuthSettings(), subject=subject, roles=[role])
    return {"Authorization": f"Bearer {token}"}


CHEF = bearer(Role.CHEF, "chef-bench")
DRIVER = bearer(Role.DRIVER, "driver-bench")
MANAGER = bearer(Role.MANAGER, "manager-bench")


class GaveUp(Exception):
    """A step did not take effect before the deadline."""


@dataclass
class Clients:
    orders: Http
    kitchen: Http


async def _until(
    step: str,
    call: Callable[[], Awaitable[Reply]],
    done: Callable[[Reply], bool],
    deadline: float,
) -> Reply:
    """Call until ``done(response)``; transport errors, 5xx and "not yet" answers are retried."""
    pause = 0.05
    last = "no answer"
    while True:
        try:
            reply = await call()
            if done(reply):
                return reply
            last = f"HTTP {reply.status}: {reply.text[:200]}"
        except TRANSPORT_ERRORS as error:
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            raise GaveUp(f"{step}: {last}")
        await asyncio.sleep(pause)
        pause = min(1.0, pause * 2)


def _reached(progress: list[str], target: str) -> Callable[[Reply], bool]:
    """Success, or a 409 saying the thing is already at or past ``target``."""

    def done(reply: Reply) -> bool:
        if reply.status == 200:
            return True
        if reply.status == 409 and isinstance(reply.body, dict):
            current = reply.body.get("current_status")
            return current in progress and progress.index(current) >= progress.index(target)
        return False

    return done


async def whole_life(clients: Clients, timing: Timing, *, patience: float = 120) -> str:
    """Place, confirm, cook, make ready, send out and deliver one order; returns its id."""
    deadline = time.monotonic() + patience
    key = str(uuid.uuid4())
    body = new_order()
    placed = await _until(
        "place",
        lambda: clients.orders.post("/orders", json=body, headers={"Idempotency-Key": key}),
        lambda r: r.status in (200, 201),
        deadline,
    )
    timing.answered("placed")
    order: dict[str, Any] = placed.body
    order_id: str = order["id"]
    token = order.get("tracking_token")
    # A retried placement that an earlier, unanswered attempt had made answers without the token
    # (it is shown once only): the manager confirms for the customer then.
    owner = {"X-Tracking-Token": token} if token else MANAGER
    url = f"/orders/{order_id}"
    await _until(
        "confirm",
        lambda: clients.orders.post(f"{url}/confirm", headers=owner),
        _reached(ORDER_PROGRESS, "confirmed"),
        deadline,
    )
    timing.answered("confirmed")
    ticket = f"/tickets/{order_id}"
    # 404 until the kitchen consumed the confirmation: "not yet", retried.
    await _until(
        "start cooking",
        lambda: clients.kitchen.post(f"{ticket}/start", headers=CHEF),
        _reached(TICKET_PROGRESS, "cooking"),
        deadline,
    )
    await _until(
        "ready",
        lambda: clients.kitchen.post(f"{ticket}/ready", headers=CHEF),
        _reached(TICKET_PROGRESS, "ready"),
        deadline,
    )
    timing.answered("ready")
    # 409 "cooking" until the orders service consumed the kitchen's events: retried.
    await _until(
        "departure",
        lambda: clients.orders.post(f"{url}/departure", headers=DRIVER),
        _reached(ORDER_PROGRESS, "out_for_delivery"),
        deadline,
    )
    await _until(
        "delivery",
        lambda: clients.orders.post(f"{url}/delivery", headers=DRIVER),
        _reached(ORDER_PROGRESS, "delivered"),
        deadline,
    )
    timing.answered("delivered")
    return order_id
