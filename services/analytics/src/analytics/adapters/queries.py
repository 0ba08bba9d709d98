"""The analytics questions, answered by SQL over ``order_facts`` and ``order_lines``.

Every answer is computed from the fact rows at query time, so it does not depend on the order the
events were read in, and a rebuilt database answers exactly like the live one. Each question
returns its own typed read model: money is a Decimal in EUR (zero where nothing was sold),
durations are seconds (3 places), rates are fractions (4 places), and time buckets are aware
datetimes in UTC; the API's response models say how each is written in JSON.

What counts where:

* An order belongs to the window when its ``placed_at`` (from OrderPlaced) is in it; an order
  whose OrderPlaced has not been read yet is in no window.
* Sales (revenue, average order value, pizzas, top customers, peak-hour revenue) leave out
  cancelled orders; order counts include them.
* Preparation time is cooking started → ready (the kitchen's times, else the order's).
* On time: ready no later than the estimate the kitchen's OrderReady event carried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    desc,
    extract,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from analytics.adapters.orm import order_facts_table, order_lines_table
from analytics.domain.facts import Status
from analytics.domain.window import Bucket, Window


@dataclass(frozen=True)
class OverviewRow:
    orders: int
    cancelled: int
    revenue: Decimal
    average_order_value: Decimal
    pizzas: int
    customers: int


@dataclass(frozen=True)
class TimeBucketRow:
    bucket: datetime
    orders: int
    cancelled: int
    revenue: Decimal


@dataclass(frozen=True)
class ReasonCountRow:
    reason: str | None
    orders: int


@dataclass(frozen=True)
class CancellationsRow:
    cancelled: int
    by_reason: list[ReasonCountRow]
    by_previous_status: dict[str, int]
    pizzas_wasted: int


@dataclass(frozen=True)
class PizzaSalesRow:
    pizza: str
    size: str
    quantity: int
    revenue: Decimal


@dataclass(frozen=True)
class PreparationBucketRow:
    bucket: datetime
    orders: int
    average_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class PreparationRow:
    orders: int
    average_seconds: float | None
    p90_seconds: float | None
    series: list[PreparationBucketRow]


@dataclass(frozen=True)
class OnTimeBucketRow:
    bucket: datetime
    measured: int
    on_time: int
    rate: float | None


@dataclass(frozen=True)
class OnTimeRow:
    measured: int
    on_time: int
    rate: float | None
    series: list[OnTimeBucketRow]


@dataclass(frozen=True)
class CookStatsRow:
    cook: str
    started: int
    ready: int
    average_preparation_seconds: float | None
    p90_preparation_seconds: float | None
    on_time: int
    on_time_rate: float | None
    pizzas_wasted: int


@dataclass(frozen=True)
class DriverStatsRow:
    driver_id: str
    departures: int
    deliveries: int
    average_delivery_seconds: float | None
    longest_delivery_seconds: float | None


@dataclass(frozen=True)
class HourOfDayRow:
    hour: int
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class CustomerRevenueRow:
    customer_id: str
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class FactLineRow:
    pizza: str
    size: str
    quantity: int
    toppings: list[str]
    unit_price: Decimal


@dataclass(frozen=True)
class OrderFactRow:
    """One order's fact row (the columns of ``order_facts``) and its lines."""

    order_id: str
    status: Status
    customer_id: str | None
    fulfilment: str | None
    placed_at: datetime | None
    total: Decimal | None
    pizzas: int | None
    confirmed_at: datetime | None
    confirmed_by: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    cancelled_from: str | None
    cooking_started_at: datetime | None
    order_ready_at: datetime | None
    departed_at: datetime | None
    driver_id: str | None
    delivered_at: datetime | None
    picked_up_at: datetime | None
    queued_at: datetime | None
    cook: str | None
    kitchen_started_at: datetime | None
    kitchen_ready_at: datetime | None
    estimated_ready_at: datetime | None
    lateness_seconds: int | None
    on_time: bool | None
    withdrawn_at: datetime | None
    pizzas_wasted: int | None
    lines: list[FactLineRow]


facts = order_facts_table.c
lines = order_lines_table.c
CENT = Decimal("0.01")

started = func.coalesce(facts.kitchen_started_at, facts.cooking_started_at)
ready = func.coalesce(facts.kitchen_ready_at, facts.order_ready_at)
prep_seconds = extract("epoch", ready - started)
not_cancelled = facts.status != Status.CANCELLED.value
sale = case((not_cancelled, facts.total), else_=None)


def cents(value: Decimal | None) -> Decimal:
    return (value or Decimal(0)).quantize(CENT)


def seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def utc(value: datetime) -> datetime:
    """A bucket's start: ``date_trunc`` over the UTC wall time gives it without its zone."""
    return value.replace(tzinfo=UTC)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _in(window: Window) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [facts.placed_at.is_not(None)]
    if window.since is not None:
        conditions.append(facts.placed_at >= window.since)
    if window.until is not None:
        conditions.append(facts.placed_at < window.until)
    return and_(*conditions)


def _bucket(bucket: Bucket, column: Any = facts.placed_at) -> ColumnElement[datetime]:
    return func.date_trunc(bucket.value, func.timezone("UTC", column))


async def _rows(session: AsyncSession, statement: Executable) -> list[Any]:
    return list((await session.execute(statement)).all())


async def overview(session: AsyncSession, window: Window) -> OverviewRow:
    row = (
        await session.execute(
            select(
                func.count().label("orders"),
                func.count().filter(~not_cancelled).label("cancelled"),
                func.sum(sale).label("revenue"),
                func.count(sale).label("sales"),
                func.sum(case((not_cancelled, facts.pizzas), else_=None)).label("pizzas"),
                func.count(func.distinct(facts.customer_id)).label("customers"),
            ).where(_in(window))
        )
    ).one()
    revenue = row.revenue or Decimal(0)
    average = (revenue / row.sales) if row.sales else Decimal(0)
    return OverviewRow(
        orders=row.orders,
        cancelled=row.cancelled,
        revenue=cents(revenue),
        average_order_value=cents(average),
        pizzas=int(row.pizzas or 0),
        customers=row.customers,
    )


async def timeseries(session: AsyncSession, window: Window, bucket: Bucket) -> list[TimeBucketRow]:
    start = _bucket(bucket).label("bucket")
    rows = await _rows(
        session,
        select(
            start,
            func.count().label("orders"),
            func.count().filter(~not_cancelled).label("cancelled"),
            func.sum(sale).label("revenue"),
        )
        .where(_in(window))
        .group_by(start)
        .order_by(start),
    )
    return [
        TimeBucketRow(
            bucket=utc(row.bucket),
            orders=row.orders,
            cancelled=row.cancelled,
            revenue=cents(row.revenue),
        )
        for row in rows
    ]


async def statuses(session: AsyncSession, window: Window) -> dict[Status, int]:
    rows = await _rows(
        session,
        select(facts.status, func.count().label("orders"))
        .where(_in(window))
        .group_by(facts.status)
        .order_by(facts.status),
    )
    return {Status(row.status): row.orders for row in rows}


async def cancellations(session: AsyncSession, window: Window) -> CancellationsRow:
    cancelled = and_(_in(window), ~not_cancelled)
    rows = await _rows(
        session,
        select(facts.cancel_reason, func.count().label("orders"))
        .where(cancelled)
        .group_by(facts.cancel_reason)
        .order_by(desc("orders"), facts.cancel_reason),
    )
    by_stage = await _rows(
        session,
        select(facts.cancelled_from, func.count().label("orders"))
        .where(cancelled)
        .group_by(facts.cancelled_from)
        .order_by(facts.cancelled_from),
    )
    wasted = (
        await session.execute(
            select(func.coalesce(func.sum(facts.pizzas_wasted), 0)).where(_in(window))
        )
    ).scalar_one()
    return CancellationsRow(
        cancelled=sum(row.orders for row in rows),
        by_reason=[ReasonCountRow(reason=row.cancel_reason, orders=row.orders) for row in rows],
        by_previous_status={row.cancelled_from: row.orders for row in by_stage},
        pizzas_wasted=int(wasted),
    )


async def pizzas(session: AsyncSession, window: Window) -> list[PizzaSalesRow]:
    quantity = func.sum(lines.quantity).label("quantity")
    rows = await _rows(
        session,
        select(
            lines.pizza,
            lines.size,
            quantity,
            func.sum(lines.quantity * lines.unit_price).label("revenue"),
        )
        .join(order_facts_table, facts.order_id == lines.order_id)
        .where(_in(window), not_cancelled)
        .group_by(lines.pizza, lines.size)
        .order_by(desc(quantity), lines.pizza, lines.size),
    )
    return [
        PizzaSalesRow(
            pizza=row.pizza,
            size=row.size,
            quantity=int(row.quantity),
            revenue=cents(row.revenue),
        )
        for row in rows
    ]


def _prepared(window: Window) -> ColumnElement[bool]:
    return and_(_in(window), started.is_not(None), ready.is_not(None))


async def preparation(session: AsyncSession, window: Window, bucket: Bucket) -> PreparationRow:
    summary = (
        await session.execute(
            select(
                func.count().label("orders"),
                func.avg(prep_seconds).label("average"),
                func.percentile_cont(0.9).within_group(prep_seconds).label("p90"),
            ).where(_prepared(window))
        )
    ).one()
    start = _bucket(bucket).label("bucket")
    rows = await _rows(
        session,
        select(
            start,
            func.count().label("orders"),
            func.avg(prep_seconds).label("average"),
            func.percentile_cont(0.9).within_group(prep_seconds).label("p90"),
        )
        .where(_prepared(window))
        .group_by(start)
        .order_by(start),
    )
    return PreparationRow(
        orders=summary.orders,
        average_seconds=seconds(summary.average),
        p90_seconds=seconds(summary.p90),
        series=[
            PreparationBucketRow(
                bucket=utc(row.bucket),
                orders=row.orders,
                average_seconds=seconds(row.average),
                p90_seconds=seconds(row.p90),
            )
            for row in rows
        ],
    )


async def on_time(session: AsyncSession, window: Window, bucket: Bucket) -> OnTimeRow:
    measured = and_(_in(window), facts.on_time.is_not(None))
    on_time_count = func.count().filter(facts.on_time.is_(True))
    summary = (
        await session.execute(
            select(func.count().label("measured"), on_time_count.label("on_time")).where(measured)
        )
    ).one()
    start = _bucket(bucket).label("bucket")
    rows = await _rows(
        session,
        select(start, func.count().label("measured"), on_time_count.label("on_time"))
        .where(measured)
        .group_by(start)
        .order_by(start),
    )
    return OnTimeRow(
        measured=summary.measured,
        on_time=summary.on_time,
        rate=rate(summary.on_time, summary.measured),
        series=[
            OnTimeBucketRow(
                bucket=utc(row.bucket),
                measured=row.measured,
                on_time=row.on_time,
                rate=rate(row.on_time, row.measured),
            )
            for row in rows
        ],
    )


async def cooks(session: AsyncSession, window: Window) -> list[CookStatsRow]:
    prepared = and_(started.is_not(None), ready.is_not(None))
    rows = await _rows(
        session,
        select(
            facts.cook,
            func.count().label("started"),
            func.count().filter(prepared).label("ready"),
            func.avg(prep_seconds).label("average"),
            func.percentile_cont(0.9).within_group(prep_seconds).label("p90"),
            func.count(facts.on_time).label("measured"),
            func.count().filter(facts.on_time.is_(True)).label("on_time"),
            func.coalesce(func.sum(facts.pizzas_wasted), 0).label("wasted"),
        )
        .where(_in(window), facts.cook.is_not(None))
        .group_by(facts.cook)
        .order_by(facts.cook),
    )
    return [
        CookStatsRow(
            cook=row.cook,
            started=row.started,
            ready=row.ready,
            average_preparation_seconds=seconds(row.average),
            p90_preparation_seconds=seconds(row.p90),
            on_time=row.on_time,
            on_time_rate=rate(row.on_time, row.measured),
            pizzas_wasted=int(row.wasted),
        )
        for row in rows
    ]


async def drivers(session: AsyncSession, window: Window) -> list[DriverStatsRow]:
    trip = extract("epoch", facts.delivered_at - facts.departed_at)
    rows = await _rows(
        session,
        select(
            facts.driver_id,
            func.count(facts.departed_at).label("departures"),
            func.count(facts.delivered_at).label("deliveries"),
            func.avg(trip).label("average"),
            func.max(trip).label("longest"),
        )
        .where(_in(window), facts.driver_id.is_not(None))
        .group_by(facts.driver_id)
        .order_by(facts.driver_id),
    )
    return [
        DriverStatsRow(
            driver_id=row.driver_id,
            departures=row.departures,
            deliveries=row.deliveries,
            average_delivery_seconds=seconds(row.average),
            longest_delivery_seconds=seconds(row.longest),
        )
        for row in rows
    ]


async def peak_hours(session: AsyncSession, window: Window) -> list[HourOfDayRow]:
    hour = cast(extract("hour", func.timezone("UTC", facts.placed_at)), Integer).label("hour")
    rows = await _rows(
        session,
        select(hour, func.count().label("orders"), func.sum(sale).label("revenue"))
        .where(_in(window))
        .group_by(hour)
        .order_by(hour),
    )
    return [
        HourOfDayRow(hour=row.hour, orders=row.orders, revenue=cents(row.revenue)) for row in rows
    ]


async def top_customers(
    session: AsyncSession, window: Window, limit: int
) -> list[CustomerRevenueRow]:
    revenue = func.coalesce(func.sum(sale), 0).label("revenue")
    orders = func.count().label("orders")
    rows = await _rows(
        session,
        select(facts.customer_id, orders, revenue)
        .where(_in(window), facts.customer_id.is_not(None))
        .group_by(facts.customer_id)
        .order_by(desc(revenue), desc(orders), facts.customer_id)
        .limit(limit),
    )
    return [
        CustomerRevenueRow(
            customer_id=row.customer_id, orders=row.orders, revenue=cents(row.revenue)
        )
        for row in rows
    ]


async def order_fact(session: AsyncSession, order_id: str) -> OrderFactRow | None:
    row = (
        (await session.execute(select(order_facts_table).where(facts.order_id == order_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    line_rows = await _rows(
        session,
        select(order_lines_table).where(lines.order_id == order_id).order_by(lines.line_no),
    )
    columns: dict[str, Any] = {
        name: cents(value) if isinstance(value, Decimal) else value for name, value in row.items()
    }
    columns["status"] = Status(columns["status"])
    return OrderFactRow(
        **columns,
        lines=[
            FactLineRow(
                pizza=line.pizza,
                size=line.size,
                quantity=line.quantity,
                toppings=list(line.toppings),
                unit_price=cents(line.unit_price),
            )
            for line in line_rows
        ],
    )
