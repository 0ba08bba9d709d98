"""A known set of orders as order and kitchen events, and the analytics answers computed from it
in plain Python, independently of the analytics service's SQL."""

from __future__ import annotations

import random
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.catalogue import (
    KitchenCookingStarted,
    KitchenOrderReady,
    OrderCancelled,
    OrderConfirmed,
    OrderCookingStarted,
    OrderDelivered,
    OrderDeparted,
    OrderLine,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
    TicketQueued,
    TicketWithdrawn,
)
from eventing.cloudevents_kafka import AGGREGATE_VERSION, Envelope, encode
from eventing.events import EventData
from eventing.kafka_security import KafkaSecurity

CENT = Decimal("0.01")
MENU = {
    "Margherita": Decimal("9.50"),
    "Pepperoni": Decimal("11.00"),
    "Hawaiian": Decimal("12.25"),
    "Vegetarian": Decimal("10.75"),
}
SIZES = {"small": Decimal("0.8"), "medium": Decimal("1"), "large": Decimal("1.25")}
FATES = (
    ("delivered", 40),
    ("picked_up", 22),
    ("cancelled_pending", 7),
    ("cancelled_confirmed", 6),
    ("cancelled_cooking", 5),
    ("confirmed", 5),
    ("cooking", 5),
    ("ready", 5),
    ("out_for_delivery", 5),
)
REASONS = ("customer changed mind", "too slow", "wrong address")


@dataclass
class Order:
    order_id: str
    customer_id: str
    placed_at: datetime
    lines: list[OrderLine]
    fate: str
    fulfilment: str
    cook: str | None = None
    driver: str | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    estimated_ready_at: datetime | None = None
    departed_at: datetime | None = None
    delivered_at: datetime | None = None
    reason: str | None = None
    previous_status: str | None = None
    wasted: int = 0
    kitchen_first: bool = False
    order_events: list[EventData] = field(default_factory=list)
    kitchen_events: list[EventData] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal(0))

    @property
    def pizzas(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def cancelled(self) -> bool:
        return self.fate.startswith("cancelled")

    @property
    def status(self) -> str:
        return "cancelled" if self.cancelled else self.fate


@dataclass
class Dataset:
    run: str
    since: datetime
    until: datetime
    orders: list[Order]

    @property
    def window(self) -> dict[str, str]:
        return {"from": self.since.isoformat(), "to": self.until.isoformat()}


def generate(count: int, seed: int | None = None, after: datetime | None = None) -> Dataset:
    """``count`` orders placed 7 minutes apart, in a window of their own (starting ``after``)."""
    run = uuid.uuid4().hex[:8]
    rng = random.Random(seed if seed is not None else run)
    # A window in the past that no other run uses (order ids are unique per run too).
    since = after or datetime(1990, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 12_000))
    cooks = [f"{run}-cook-{n}" for n in range(4)]
    drivers = [f"{run}-driver-{n}" for n in range(3)]
    fates = [name for name, weight in FATES for _ in range(weight)]
    orders = []
    for number in range(count):
        placed = since + timedelta(seconds=number * 420 + rng.randrange(0, 400))
        lines = []
        for _ in range(rng.randint(1, 3)):
            pizza, size = rng.choice(list(MENU)), rng.choice(list(SIZES))
            price = (MENU[pizza] * SIZES[size]).quantize(CENT)
            lines.append(
                OrderLine(pizza=pizza, size=size, quantity=rng.randint(1, 3), unit_price=price)
            )
        fate = rng.choice(fates)
        fulfilment = "pickup" if fate == "picked_up" else "delivery"
        if fate in ("cancelled_pending", "cancelled_confirmed", "cancelled_cooking", "ready"):
            fulfilment = rng.choice(["pickup", "delivery"])
        order = Order(
            order_id=f"{run}-order-{number}",
            customer_id=f"{run}-customer-{number % 41}",
            placed_at=placed,
            lines=lines,
            fate=fate,
            fulfilment=fulfilment,
            kitchen_first=number % 3 == 0,
        )
        _events(order, rng, cooks, drivers)
        orders.append(order)
    until = since + timedelta(seconds=count * 420 + 3600)
    return Dataset(run, since, until, orders)


def _events(order: Order, rng: random.Random, cooks: list[str], drivers: list[str]) -> None:
    o, k = order.order_events, order.kitchen_events
    oid = order.order_id
    o.append(
        OrderPlaced(
            order_id=oid,
            customer_id=order.customer_id,
            lines=tuple(order.lines),
            total=order.total,
            placed_at=order.placed_at,
            fulfilment=order.fulfilment,
        )
    )
    if order.fate == "cancelled_pending":
        order.reason, order.previous_status = rng.choice(REASONS), "pending"
        o.append(_cancel(order, order.placed_at + timedelta(minutes=2)))
        return
    confirmed = order.placed_at + timedelta(seconds=rng.randrange(10, 120))
    o.append(
        OrderConfirmed(
            order_id=oid,
            confirmed_at=confirmed,
            confirmed_by="customer",
            customer_id=order.customer_id,
            lines=tuple(order.lines),
            fulfilment=order.fulfilment,
        )
    )
    queued_estimate = confirmed + timedelta(minutes=25)
    k.append(
        TicketQueued(
            order_id=oid,
            pizzas=order.pizzas,
            estimated_ready_at=queued_estimate,
            queued_at=confirmed,
        )
    )
    if order.fate == "confirmed":
        return
    if order.fate == "cancelled_confirmed":
        order.reason, order.previous_status = rng.choice(REASONS), "confirmed"
        cancelled = confirmed + timedelta(minutes=3)
        o.append(_cancel(order, cancelled))
        k.append(
            TicketWithdrawn(
                order_id=oid,
                wasted=False,
                pizzas_wasted=0,
                reason=order.reason,
                withdrawn_at=cancelled,
            )
        )
        return
    order.cook = rng.choice(cooks)
    order.started_at = confirmed + timedelta(seconds=rng.randrange(30, 900))
    order.estimated_ready_at = order.started_at + timedelta(minutes=rng.randint(12, 20))
    k.append(
        KitchenCookingStarted(
            order_id=oid,
            cook=order.cook,
            started_at=order.started_at,
            estimated_ready_at=order.estimated_ready_at,
        )
    )
    o.append(OrderCookingStarted(order_id=oid, started_at=order.started_at))
    if order.fate == "cancelled_cooking":
        order.reason, order.previous_status = rng.choice(REASONS), "confirmed"
        order.wasted = order.pizzas
        cancelled = order.started_at + timedelta(minutes=4)
        o.append(_cancel(order, cancelled))
        k.append(
            TicketWithdrawn(
                order_id=oid,
                wasted=True,
                pizzas_wasted=order.pizzas,
                reason=order.reason,
                withdrawn_at=cancelled,
            )
        )
        return
    if order.fate == "cooking":
        return
    order.ready_at = order.started_at + timedelta(seconds=rng.randrange(480, 1500))
    lateness = int((order.ready_at - order.estimated_ready_at).total_seconds())
    k.append(
        KitchenOrderReady(
            order_id=oid,
            ready_at=order.ready_at,
            estimated_ready_at=order.estimated_ready_at,
            lateness_seconds=lateness,
        )
    )
    o.append(OrderReady(order_id=oid, ready_at=order.ready_at, fulfilment=order.fulfilment))
    if order.fate == "ready":
        return
    if order.fate == "picked_up":
        o.append(OrderPickedUp(order_id=oid, picked_up_at=order.ready_at + timedelta(minutes=5)))
        return
    order.driver = rng.choice(drivers)
    order.departed_at = order.ready_at + timedelta(seconds=rng.randrange(30, 600))
    o.append(OrderDeparted(order_id=oid, driver_id=order.driver, departed_at=order.departed_at))
    if order.fate == "out_for_delivery":
        return
    order.delivered_at = order.departed_at + timedelta(seconds=rng.randrange(300, 1800))
    o.append(OrderDelivered(order_id=oid, driver_id=order.driver, delivered_at=order.delivered_at))


def _cancel(order: Order, at: datetime) -> OrderCancelled:
    assert order.reason is not None and order.previous_status is not None
    return OrderCancelled(
        order_id=order.order_id,
        cancelled_at=at,
        reason=order.reason,
        previous_status=order.previous_status,
    )


async def publish(bootstrap: str, dataset: Dataset, topic_prefix: str = "") -> int:
    """Produce every event as the services would; kitchen events of every third order first.

    ``topic_prefix`` is prepended to the topics' names (a test's own copies of the topics).
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **KafkaSecurity().client_options(), acks="all", linger_ms=5
    )
    await producer.start()
    sent = 0
    try:

        async def send(events: Iterable[EventData], source: str, versioned: bool) -> None:
            nonlocal sent
            for version, event in enumerate(events, start=1):
                key = str(getattr(event, "order_id"))  # noqa: B009 - every order event has one
                extensions = {AGGREGATE_VERSION: str(version)} if versioned else {}
                record = encode(
                    Envelope(
                        id=str(uuid.uuid4()),
                        type=event.event_type,
                        source=source,
                        subject=key,
                        time=datetime.now(UTC),
                        partition_key=key,
                        data=event.model_dump(mode="json"),
                        extensions=extensions,
                    )
                )
                await producer.send(
                    topic_prefix + event.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
                sent += 1

        first = [order for order in dataset.orders if order.kitchen_first]
        later = [order for order in dataset.orders if not order.kitchen_first]
        for order in first:
            await send(order.kitchen_events, "/mariospizzeria/kitchen", False)
        for order in dataset.orders:
            await send(order.order_events, "/mariospizzeria/orders", True)
        for order in later:
            await send(order.kitchen_events, "/mariospizzeria/kitchen", False)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


# ------------------------------------------------------------------ expected answers


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat()


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()


def _secs(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    average = round(statistics.fmean(values), 3)
    p90 = (
        values[0] if len(values) == 1 else statistics.quantiles(values, n=10, method="inclusive")[8]
    )
    return average, round(p90, 3)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _prep(order: Order) -> float | None:
    if order.started_at is None or order.ready_at is None:
        return None
    return (order.ready_at - order.started_at).total_seconds()


def expected(dataset: Dataset) -> dict[str, Any]:
    """Every analytics answer for the dataset's window, computed here in plain Python."""
    orders = dataset.orders
    sold = [o for o in orders if not o.cancelled]
    revenue = sum((o.total for o in sold), Decimal(0))
    answers: dict[str, Any] = {
        "overview": {
            "orders": len(orders),
            "cancelled": len(orders) - len(sold),
            "revenue": _money(revenue),
            "average_order_value": _money(revenue / len(sold)),
            "pizzas": sum(o.pizzas for o in sold),
            "customers": len({o.customer_id for o in orders}),
        }
    }
    for bucket, key in (("hour", _hour), ("day", _day)):
        groups: dict[str, list[Order]] = defaultdict(list)
        for o in orders:
            groups[key(o.placed_at)].append(o)
        answers[f"timeseries?bucket={bucket}"] = [
            {
                "bucket": name,
                "orders": len(group),
                "cancelled": sum(o.cancelled for o in group),
                "revenue": _money(sum((o.total for o in group if not o.cancelled), Decimal(0))),
            }
            for name, group in sorted(groups.items())
        ]
    answers["statuses"] = dict(sorted(Counter(o.status for o in orders).items()))
    cancelled = [o for o in orders if o.cancelled]
    reasons = Counter(o.reason for o in cancelled)
    answers["cancellations"] = {
        "cancelled": len(cancelled),
        "by_reason": [
            {"reason": reason, "orders": n}
            for reason, n in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        ],
        "by_previous_status": dict(sorted(Counter(o.previous_status for o in cancelled).items())),
        "pizzas_wasted": sum(o.wasted for o in orders),
    }
    per_pizza: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for o in sold:
        for line in o.lines:
            per_pizza[(line.pizza, line.size)][0] += line.quantity
            per_pizza[(line.pizza, line.size)][1] += line.quantity * line.unit_price
    answers["pizzas"] = [
        {"pizza": pizza, "size": size, "quantity": int(q), "revenue": _money(r)}
        for (pizza, size), (q, r) in sorted(
            per_pizza.items(), key=lambda item: (-item[1][0], item[0][0], item[0][1])
        )
    ]
    prepared = [o for o in orders if _prep(o) is not None]
    average, p90 = _secs([_prep(o) or 0.0 for o in prepared])
    by_hour: dict[str, list[Order]] = defaultdict(list)
    for o in prepared:
        by_hour[_hour(o.placed_at)].append(o)
    answers["preparation?bucket=hour"] = {
        "orders": len(prepared),
        "average_seconds": average,
        "p90_seconds": p90,
        "series": [
            {
                "bucket": name,
                "orders": len(group),
                "average_seconds": _secs([_prep(o) or 0.0 for o in group])[0],
                "p90_seconds": _secs([_prep(o) or 0.0 for o in group])[1],
            }
            for name, group in sorted(by_hour.items())
        ],
    }

    def punctual(o: Order) -> bool:
        assert o.ready_at is not None and o.estimated_ready_at is not None
        return o.ready_at <= o.estimated_ready_at

    measured = [o for o in orders if o.ready_at is not None]
    measured_by_hour: dict[str, list[Order]] = defaultdict(list)
    for o in measured:
        measured_by_hour[_hour(o.placed_at)].append(o)
    on_time = sum(punctual(o) for o in measured)
    answers["on-time?bucket=hour"] = {
        "measured": len(measured),
        "on_time": on_time,
        "rate": _rate(on_time, len(measured)),
        "series": [
            {
                "bucket": name,
                "measured": len(group),
                "on_time": sum(punctual(o) for o in group),
                "rate": _rate(sum(punctual(o) for o in group), len(group)),
            }
            for name, group in sorted(measured_by_hour.items())
        ],
    }
    by_cook: dict[str, list[Order]] = defaultdict(list)
    for o in orders:
        if o.cook is not None:
            by_cook[o.cook].append(o)
    answers["cooks"] = []
    for cook, group in sorted(by_cook.items()):
        done = [o for o in group if o.ready_at is not None]
        average, p90 = _secs([_prep(o) or 0.0 for o in done])
        punctual_count = sum(punctual(o) for o in done)
        answers["cooks"].append(
            {
                "cook": cook,
                "started": len(group),
                "ready": len(done),
                "average_preparation_seconds": average,
                "p90_preparation_seconds": p90,
                "on_time": punctual_count,
                "on_time_rate": _rate(punctual_count, len(done)),
                "pizzas_wasted": sum(o.wasted for o in group),
            }
        )
    by_driver: dict[str, list[Order]] = defaultdict(list)
    for o in orders:
        if o.driver is not None:
            by_driver[o.driver].append(o)
    answers["drivers"] = []
    for driver, group in sorted(by_driver.items()):
        trips = [
            (o.delivered_at - o.departed_at).total_seconds()
            for o in group
            if o.delivered_at is not None and o.departed_at is not None
        ]
        answers["drivers"].append(
            {
                "driver_id": driver,
                "departures": len(group),
                "deliveries": len(trips),
                "average_delivery_seconds": round(statistics.fmean(trips), 3) if trips else None,
                "longest_delivery_seconds": max(trips) if trips else None,
            }
        )
    by_hour_of_day: dict[int, list[Order]] = defaultdict(list)
    for o in orders:
        by_hour_of_day[o.placed_at.astimezone(UTC).hour].append(o)
    answers["peak-hours"] = [
        {
            "hour": hour,
            "orders": len(group),
            "revenue": _money(sum((o.total for o in group if not o.cancelled), Decimal(0))),
        }
        for hour, group in sorted(by_hour_of_day.items())
    ]
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for o in orders:
        by_customer[o.customer_id].append(o)
    ranked = sorted(
        (
            (sum((o.total for o in group if not o.cancelled), Decimal(0)), len(group), customer)
            for customer, group in by_customer.items()
        ),
        key=lambda item: (-item[0], -item[1], item[2]),
    )
    answers["top-customers?limit=10"] = [
        {"customer_id": customer, "orders": n, "revenue": _money(total)}
        for total, n, customer in ranked[:10]
    ]
    return answers
