"""The analytics questions, answered by SQL over ``order_facts`` and ``order_lines``.

Every answer is computed from the fact rows at query time, so it does not depend on the order the
events were read in, and a rebuilt database answers exactly like the live one. Answers are
JSON-ready: money is a decimal string (EUR, two places), durations are seconds (float, 3
places), time buckets are ISO 8601 in UTC.

What counts where:

* An order belongs to the window when its ``placed_at`` (from OrderPlaced) is in it; an order
  whose OrderPlaced has not been read yet is in no window.
* Sales (revenue, average order value, pizzas, top customers, peak-hour revenue) leave out
  cancelled orders; order counts include them.
* Preparation time is cooking started → ready (the kitchen's times, else the order's).
* On time: ready no later than the estimate the kitchen's OrderReady event carried.
"""

from __future__ import annotations

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

facts = order_facts_table.c
lines = order_lines_table.c
CENT = Decimal("0.01")

started = func.coalesce(facts.kitchen_started_at, facts.cooking_started_at)
ready = func.coalesce(facts.kitchen_ready_at, facts.order_ready_at)
prep_seconds = extract("epoch", ready - started)
not_cancelled = facts.status != Status.CANCELLED.value
sale = case((not_cancelled, facts.total), else_=None)


def money(value: Decimal | None) -> str:
    return str((value or Decimal(0)).quantize(CENT))


def seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def utc(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat()


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


async def overview(session: AsyncSession, window: Window) -> dict[str, Any]:
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
    return {
        "orders": row.orders,
        "cancelled": row.cancelled,
        "revenue": money(revenue),
        "average_order_value": money(average),
        "pizzas": int(row.pizzas or 0),
        "customers": row.customers,
    }


async def timeseries(session: AsyncSession, window: Window, bucket: Bucket) -> list[dict[str, Any]]:
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
        {
            "bucket": utc(row.bucket),
            "orders": row.orders,
            "cancelled": row.cancelled,
            "revenue": money(row.revenue),
        }
        for row in rows
    ]


async def statuses(session: AsyncSession, window: Window) -> dict[str, int]:
    rows = await _rows(
        session,
        select(facts.status, func.count().label("orders"))
        .where(_in(window))
        .group_by(facts.status)
        .order_by(facts.status),
    )
    return {row.status: row.orders for row in rows}


async def cancellations(session: AsyncSession, window: Window) -> dict[str, Any]:
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
    return {
        "cancelled": sum(row.orders for row in rows),
        "by_reason": [{"reason": row.cancel_reason, "orders": row.orders} for row in rows],
        "by_previous_status": {row.cancelled_from: row.orders for row in by_stage},
        "pizzas_wasted": int(wasted),
    }


async def pizzas(session: AsyncSession, window: Window) -> list[dict[str, Any]]:
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
        {
            "pizza": row.pizza,
            "size": row.size,
            "quantity": int(row.quantity),
            "revenue": money(row.revenue),
        }
        for row in rows
    ]


def _prepared(window: Window) -> ColumnElement[bool]:
    return and_(_in(window), started.is_not(None), ready.is_not(None))


async def preparation(session: AsyncSession, window: Window, bucket: Bucket) -> dict[str, Any]:
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
    return {
        "orders": summary.orders,
        "average_seconds": seconds(summary.average),
        "p90_seconds": seconds(summary.p90),
        "series": [
            {
                "bucket": utc(row.bucket),
                "orders": row.orders,
                "average_seconds": seconds(row.average),
                "p90_seconds": seconds(row.p90),
            }
            for row in rows
        ],
    }


async def on_time(session: AsyncSession, window: Window, bucket: Bucket) -> dict[str, Any]:
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
    return {
        "measured": summary.measured,
        "on_time": summary.on_time,
        "rate": rate(summary.on_time, summary.measured),
        "series": [
            {
                "bucket": utc(row.bucket),
                "measured": row.measured,
                "on_time": row.on_time,
                "rate": rate(row.on_time, row.measured),
            }
            for row in rows
        ],
    }


async def cooks(session: AsyncSession, window: Window) -> list[dict[str, Any]]:
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
        {
            "cook": row.cook,
            "started": row.started,
            "ready": row.ready,
            "average_preparation_seconds": seconds(row.average),
            "p90_preparation_seconds": seconds(row.p90),
            "on_time": row.on_time,
            "on_time_rate": rate(row.on_time, row.measured),
            "pizzas_wasted": int(row.wasted),
        }
        for row in rows
    ]


async def drivers(session: AsyncSession, window: Window) -> list[dict[str, Any]]:
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
        {
            "driver_id": row.driver_id,
            "departures": row.departures,
            "deliveries": row.deliveries,
            "average_delivery_seconds": seconds(row.average),
            "longest_delivery_seconds": seconds(row.longest),
        }
        for row in rows
    ]


async def peak_hours(session: AsyncSession, window: Window) -> list[dict[str, Any]]:
    hour = cast(extract("hour", func.timezone("UTC", facts.placed_at)), Integer).label("hour")
    rows = await _rows(
        session,
        select(hour, func.count().label("orders"), func.sum(sale).label("revenue"))
        .where(_in(window))
        .group_by(hour)
        .order_by(hour),
    )
    return [{"hour": row.hour, "orders": row.orders, "revenue": money(row.revenue)} for row in rows]


async def top_customers(session: AsyncSession, window: Window, limit: int) -> list[dict[str, Any]]:
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
        {"customer_id": row.customer_id, "orders": row.orders, "revenue": money(row.revenue)}
        for row in rows
    ]


async def order_fact(session: AsyncSession, order_id: str) -> dict[str, Any] | None:
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
    fact: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, Decimal):
            fact[name] = money(value)
        elif isinstance(value, datetime):
            fact[name] = value.isoformat()
        else:
            fact[name] = value
    fact["lines"] = [
        {
            "pizza": line.pizza,
            "size": line.size,
            "quantity": line.quantity,
            "toppings": list(line.toppings),
            "unit_price": money(line.unit_price),
        }
        for line in line_rows
    ]
    return fact
