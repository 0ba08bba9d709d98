"""The cooks' API: who may act, refused steps, capacity, and the estimates of a real queue."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kitchen.domain.estimates import CookingOrder, KitchenModel, QueuedOrder
from service_kit.auth import Role
from tests.support.kitchen import KitchenHarness, confirmed, line, new_order_id, statuses


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_only_chefs_and_managers_may_start_and_finish(kitchen: KitchenHarness) -> None:
    order_id = new_order_id()
    await kitchen.publish_and_wait(confirmed(order_id))
    start = f"/tickets/{order_id}/start"
    anonymous = await kitchen.client.post(start)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (
        await kitchen.client.post(start, headers={"Authorization": "Bearer x"})
    ).status_code == 401
    for role in (Role.CUSTOMER, Role.DRIVER, Role.ANALYST):
        forbidden = await kitchen.client.post(start, headers=kitchen.token(role))
        assert forbidden.status_code == 403, role
    started = await kitchen.client.post(start, headers=kitchen.token(Role.CHEF, subject="chef-7"))
    assert started.status_code == 200, started.text
    assert (started.json()["status"], started.json()["cook"]) == ("cooking", "chef-7")
    ready_url = f"/tickets/{order_id}/ready"
    assert (await kitchen.client.post(ready_url)).status_code == 401
    assert (
        await kitchen.client.post(ready_url, headers=kitchen.token(Role.DRIVER))
    ).status_code == 403
    ready = await kitchen.client.post(ready_url, headers=kitchen.token(Role.MANAGER))
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_the_queue_and_the_tickets_are_for_cooks_only(kitchen: KitchenHarness) -> None:
    # They list every order in the kitchen with its pizzas and cancel reason.
    order_id = new_order_id()
    await kitchen.publish_and_wait(confirmed(order_id))
    reads = ["/queue", "/tickets", f"/tickets/{order_id}"]
    for url in [*reads, "/queue/stream"]:
        anonymous = await kitchen.client.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.json()["detail"] == "missing bearer token"
        forged = await kitchen.client.get(url, headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401, url
        for role in (Role.CUSTOMER, Role.DRIVER, Role.ANALYST):
            forbidden = await kitchen.client.get(url, headers=kitchen.token(role))
            assert forbidden.status_code == 403, (url, role)
            assert forbidden.json()["detail"] == "requires one of the roles: chef, manager"
    for url in reads:
        for role in (Role.CHEF, Role.MANAGER):
            answer = await kitchen.client.get(url, headers=kitchen.token(role))
            assert answer.status_code == 200, (url, role, answer.text)
            assert order_id in answer.text


async def test_bad_ids_and_filters_are_a_422_naming_the_parameter(kitchen: KitchenHarness) -> None:
    for bad in ("a b", "x" * 101, "ü"):
        for method, url in (
            ("GET", f"/tickets/{bad}"),
            ("POST", f"/tickets/{bad}/start"),
            ("POST", f"/tickets/{bad}/ready"),
        ):
            answer = await kitchen.client.request(method, url, headers=kitchen.chef)
            assert answer.status_code == 422, (method, url)
            assert answer.json()["detail"][0]["loc"] == ["path", "order_id"]
    too_many = await kitchen.client.get(
        "/tickets", params={"status": ["queued"] * 6}, headers=kitchen.chef
    )
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["query", "status"]
    unknown = await kitchen.client.get("/tickets", params={"status": "burnt"}, headers=kitchen.chef)
    assert unknown.status_code == 422


async def test_unknown_tickets_and_wrong_states(kitchen: KitchenHarness) -> None:
    unknown = await kitchen.client.post("/tickets/nope/start", headers=kitchen.chef)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no ticket for order 'nope'"
    assert (
        await kitchen.client.post("/tickets/nope/ready", headers=kitchen.chef)
    ).status_code == 404
    assert (await kitchen.client.get("/tickets/nope", headers=kitchen.chef)).status_code == 404

    order_id = new_order_id()
    await kitchen.publish_and_wait(confirmed(order_id))
    early = await kitchen.client.post(f"/tickets/{order_id}/ready", headers=kitchen.chef)
    assert early.status_code == 409
    assert early.json()["current_status"] == "queued"
    assert early.json()["reason"] == "cooking has not started yet"
    assert (
        await kitchen.client.post(f"/tickets/{order_id}/start", headers=kitchen.chef)
    ).is_success
    twice = await kitchen.client.post(f"/tickets/{order_id}/start", headers=kitchen.chef)
    assert twice.status_code == 409
    assert twice.json()["current_status"] == "cooking"
    assert twice.json()["reason"].startswith("already cooking since ")
    assert "chef-mario" in twice.json()["reason"]


async def test_starting_one_more_than_capacity_is_refused(kitchen: KitchenHarness) -> None:
    orders = [new_order_id() for _ in range(4)]
    await kitchen.publish_and_wait(*(confirmed(o) for o in orders))
    for order_id in orders[:3]:
        started = await kitchen.client.post(f"/tickets/{order_id}/start", headers=kitchen.chef)
        assert started.status_code == 200, started.text
    refused = await kitchen.client.post(f"/tickets/{orders[3]}/start", headers=kitchen.chef)
    assert refused.status_code == 409
    assert refused.json() == {"detail": "kitchen at capacity", "capacity": 3, "cooking": 3}
    assert (await kitchen.ticket(orders[3]) or {})["status"] == "queued"
    assert len(await kitchen.outbox("cooking_started")) == 3  # nothing for the refused start

    queue = (await kitchen.client.get("/queue", headers=kitchen.chef)).json()
    assert (queue["capacity"], queue["cooking"]) == (3, 3)
    assert statuses(queue["tickets"]) == [
        (orders[3], "queued"),
        *((o, "cooking") for o in orders[:3]),
    ]
    # One is ready: there is room again.
    assert (
        await kitchen.client.post(f"/tickets/{orders[0]}/ready", headers=kitchen.chef)
    ).is_success
    started = await kitchen.client.post(f"/tickets/{orders[3]}/start", headers=kitchen.chef)
    assert started.status_code == 200


async def test_a_queue_of_ten_orders_is_estimated_and_reestimated(kitchen: KitchenHarness) -> None:
    # Ten orders confirmed in the same minute T0 (so the queue order is the order id), pizzas
    # as in the unit test; by hand, ready after 8, 10, 12, 16, 24, 22, 24, 30, 40, 34 minutes.
    t0 = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    prefix = new_order_id()
    orders = [f"{prefix}-{i:02d}" for i in range(1, 11)]
    pizzas = [1, 2, 3, 1, 4, 2, 1, 1, 5, 2]
    await kitchen.publish_and_wait(
        *(confirmed(o, line(quantity=n), at=t0) for o, n in zip(orders, pizzas, strict=True))
    )
    queue = (await kitchen.client.get("/queue", headers=kitchen.chef)).json()
    assert statuses(queue["tickets"]) == [(o, "queued") for o in orders]
    expected = [t0 + timedelta(minutes=m) for m in (8, 10, 12, 16, 24, 22, 24, 30, 40, 34)]
    assert [t["estimated_ready_at"] for t in queue["tickets"]] == [iso(e) for e in expected]
    assert [t["pizzas"] for t in queue["tickets"]] == pizzas
    queued_events = {
        json.loads(r["payload"])["order_id"]: json.loads(r["payload"])
        for r in await kitchen.outbox("ticket_queued")
    }
    assert set(queued_events) == set(orders)

    # The first one starts (now, a minute or more after T0): the queue is re-estimated.
    started = (
        await kitchen.client.post(f"/tickets/{orders[0]}/start", headers=kitchen.chef)
    ).json()
    started_at = parse(started["started_at"])
    model = KitchenModel()
    assert started["estimated_ready_at"] == iso(model.ready_estimate(started_at, 1))
    estimates = model.estimate(
        [CookingOrder(orders[0], 1, started_at)],
        [QueuedOrder(o, n) for o, n in zip(orders[1:], pizzas[1:], strict=True)],
        started_at,
    )
    queue = (await kitchen.client.get("/queue", headers=kitchen.chef)).json()
    assert statuses(queue["tickets"]) == [
        *((o, "queued") for o in orders[1:]),
        (orders[0], "cooking"),
    ]
    now_estimated = {t["order_id"]: t["estimated_ready_at"] for t in queue["tickets"]}
    assert {e.order_id: iso(e.estimated_ready_at) for e in estimates}.items() <= (
        now_estimated.items()
    )
    # EstimateChanged for exactly the ones that moved, from what was stored before.
    before = {o: iso(e) for o, e in zip(orders, expected, strict=True)}
    changes = [json.loads(r["payload"]) for r in await kitchen.outbox("estimate_changed")]
    moved = {o for o in orders[1:] if now_estimated[o] != before[o]}
    assert moved  # a minute or more passed since T0
    revised = {
        c["order_id"]: (c["previous_estimated_ready_at"], c["estimated_ready_at"]) for c in changes
    }
    assert revised == {o: (before[o], now_estimated[o]) for o in moved}
    assert all(
        abs(parse(c["estimated_ready_at"]) - parse(c["previous_estimated_ready_at"]))
        >= timedelta(minutes=1)
        for c in changes
    )

    # Ready early: lateness is negative, and the next one's estimate moves up.
    ready = (await kitchen.client.post(f"/tickets/{orders[0]}/ready", headers=kitchen.chef)).json()
    lateness = parse(ready["ready_at"]) - parse(ready["estimated_ready_at"])
    assert ready["lateness_seconds"] == round(lateness.total_seconds()) < 0
    [event] = [json.loads(r["payload"]) for r in await kitchen.outbox("order_ready")]
    assert event["lateness_seconds"] == ready["lateness_seconds"]
    assert event["estimated_ready_at"] == ready["estimated_ready_at"]


async def test_the_queue_shows_ready_tickets_for_thirty_minutes(kitchen: KitchenHarness) -> None:
    old, recent = new_order_id(), new_order_id()
    await kitchen.publish_and_wait(confirmed(old), confirmed(recent))
    for order_id in (old, recent):
        for step in ("start", "ready"):
            response = await kitchen.client.post(
                f"/tickets/{order_id}/{step}", headers=kitchen.chef
            )
            assert response.status_code == 200
    await kitchen.rows(
        "UPDATE tickets SET ready_at = now() - interval '31 minutes' WHERE order_id = $1", old
    )
    queue: dict[str, Any] = (await kitchen.client.get("/queue", headers=kitchen.chef)).json()
    assert statuses(queue["tickets"]) == [(recent, "ready")]
    [ticket] = queue["tickets"]
    assert set(ticket) == {
        "order_id",
        "status",
        "pizzas",
        "lines",
        "fulfilment",
        "queued_at",
        "started_at",
        "ready_at",
        "estimated_ready_at",
        "cook",
    }
    assert ticket["lines"] == [
        {"pizza": "Margherita", "size": "medium", "quantity": 1, "toppings": []}
    ]
    assert all(ticket[k].endswith("Z") for k in ("queued_at", "started_at", "ready_at"))
    listed = (
        await kitchen.client.get("/tickets", params={"status": "ready"}, headers=kitchen.chef)
    ).json()
    assert {t["order_id"] for t in listed} == {old, recent}


async def test_concurrent_starts_never_exceed_capacity(kitchen: KitchenHarness) -> None:
    """Every change locks the kitchen first, so simultaneous presses cannot overbook it."""
    orders = [new_order_id() for _ in range(8)]
    await kitchen.publish_and_wait(*(confirmed(o) for o in orders))
    answers = await asyncio.gather(
        *(kitchen.client.post(f"/tickets/{o}/start", headers=kitchen.chef) for o in orders)
    )
    assert sorted(a.status_code for a in answers) == [200] * 3 + [409] * 5
    assert all(a.json()["detail"] == "kitchen at capacity" for a in answers if a.status_code == 409)
    queue = (await kitchen.client.get("/queue", headers=kitchen.chef)).json()
    assert queue["cooking"] == 3
    assert len(await kitchen.outbox("cooking_started")) == 3
