"""One order's whole life through the public APIs, as the customer, the kitchen and a driver
would drive it, patient through faults: every step is retried until it took effect.

A retry after an ambiguous failure (connection reset, 5xx, a timeout) must not do the work
twice: placement carries an ``Idempotency-Key``; the other steps are state transitions, so a
409 whose ``current_status`` shows the step already happened counts as success.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service_kit.auth import Role
from tests.support.load import TRANSPORT_ERRORS, Http, Reply, Timing, failure_kind
from tests.support.polling import NotReached, eventually
from tests.support.tokens import staff

ORDER_PROGRESS = ["pending", "confirmed", "cooking", "ready", "out_for_delivery", "delivered"]
TICKET_PROGRESS = ["queued", "cooking", "ready"]
# The steps of ``whole_life``, as named in its ``Timing``: placed, then each transition's status.
LIFECYCLE_STEPS = ("placed", "confirmed", "cooking", "ready", "out_for_delivery", "delivered")

_serial = itertools.count()


def new_order() -> dict[str, Any]:
    """A placement's body, with a customer of its own."""
    n = next(_serial)
    return {
        "customer": {
            "name": f"Bench Customer {n}",
            "phone": f"+39 333 {n:07d}",
            "email": f"bench{n}@example.com",
            "address": f"Via del Corso {n}, Roma",
        },
        "lines": [
            {"pizza": "Margherita", "size": "large", "quantity": 1},
            {"pizza": "Pepperoni", "size": "medium", "quantity": 1, "toppings": ["olives"]},
        ],
    }


class GaveUp(Exception):
    """A step did not take effect before the deadline."""


def _staff(role: Role, subject: str) -> Callable[[], dict[str, str]]:
    return lambda: staff(role, subject=subject)


@dataclass
class Clients:
    """The APIs a lifecycle calls, and the staff's tokens (minted with the clients: a run of
    many scenarios outlives a token)."""

    orders: Http
    kitchen: Http
    chef: dict[str, str] = field(default_factory=_staff(Role.CHEF, "chef-bench"))
    driver: dict[str, str] = field(default_factory=_staff(Role.DRIVER, "driver-bench"))
    manager: dict[str, str] = field(default_factory=_staff(Role.MANAGER, "manager-bench"))


async def _until(
    step: str,
    call: Callable[[], Awaitable[Reply]],
    done: Callable[[Reply], bool],
    deadline: float,
    max_interval: float,
    timing: Timing,
) -> Reply:
    """Call until ``done(response)``; transport errors, 5xx and "not yet" answers are retried,
    and every attempt that failed (not a "not yet") is counted in ``timing.failures``."""

    async def attempt() -> Reply:
        try:
            reply = await call()
        except TRANSPORT_ERRORS as error:
            timing.failures[step, failure_kind(error)] += 1
            raise
        if reply.status >= 500 or reply.status == 429:
            timing.failures[step, f"HTTP {reply.status}"] += 1
        return reply

    try:
        return await eventually(
            attempt,
            until=done,
            timeout=max(0.0, deadline - time.monotonic()),
            interval=0.05,
            max_interval=max_interval,
            retry=TRANSPORT_ERRORS,
            what=step,
        )
    except NotReached as gave_up:
        last = gave_up.last
        if isinstance(last, Reply):
            raise GaveUp(f"{step}: HTTP {last.status}: {last.text[:200]}") from None
        raise GaveUp(f"{step}: {type(last).__name__}: {last}") from None


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


async def whole_life(
    clients: Clients, timing: Timing, *, patience: float = 120, max_retry_interval: float = 1.0
) -> str:
    """Place, confirm, cook, make ready, depart and deliver one order; returns its id.

    ``timing`` gets the time each step was answered (``LIFECYCLE_STEPS``). A step not taken
    yet is tried again after 50 ms, the pause doubling up to ``max_retry_interval``."""
    deadline = time.monotonic() + patience
    key = str(uuid.uuid4())
    body = new_order()
    placed = await _until(
        "place",
        lambda: clients.orders.post("/orders", json=body, headers={"Idempotency-Key": key}),
        lambda r: r.status in (200, 201),
        deadline,
        max_retry_interval,
        timing,
    )
    timing.answered("placed")
    order: dict[str, Any] = placed.body
    order_id: str = order["id"]
    token = order.get("tracking_token")
    # A retried placement that an earlier, unanswered attempt had made answers without the token
    # (it is shown once only): the manager confirms for the customer then.
    owner = {"X-Tracking-Token": token} if token else clients.manager
    url = f"/orders/{order_id}"
    await _until(
        "confirm",
        lambda: clients.orders.post(f"{url}/confirm", headers=owner),
        _reached(ORDER_PROGRESS, "confirmed"),
        deadline,
        max_retry_interval,
        timing,
    )
    timing.answered("confirmed")
    ticket = f"/tickets/{order_id}"
    # 404 until the kitchen consumed the confirmation: "not yet", retried.
    await _until(
        "start cooking",
        lambda: clients.kitchen.post(f"{ticket}/start", headers=clients.chef),
        _reached(TICKET_PROGRESS, "cooking"),
        deadline,
        max_retry_interval,
        timing,
    )
    timing.answered("cooking")
    await _until(
        "ready",
        lambda: clients.kitchen.post(f"{ticket}/ready", headers=clients.chef),
        _reached(TICKET_PROGRESS, "ready"),
        deadline,
        max_retry_interval,
        timing,
    )
    timing.answered("ready")
    # 409 "cooking" until the orders service consumed the kitchen's events: retried.
    await _until(
        "departure",
        lambda: clients.orders.post(f"{url}/departure", headers=clients.driver),
        _reached(ORDER_PROGRESS, "out_for_delivery"),
        deadline,
        max_retry_interval,
        timing,
    )
    timing.answered("out_for_delivery")
    await _until(
        "delivery",
        lambda: clients.orders.post(f"{url}/delivery", headers=clients.driver),
        _reached(ORDER_PROGRESS, "delivered"),
        deadline,
        max_retry_interval,
        timing,
    )
    timing.answered("delivered")
    return order_id
