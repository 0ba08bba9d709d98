"""What the analytics API answers: one model per question, with an example each.

Each model is read from its typed read model of ``analytics.adapters.queries`` (the dashboard
and the tests read these fields): money is a decimal string in EUR with two places, durations
are seconds, rates are fractions between 0 and 1, and time buckets are RFC 3339 times in UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    RootModel,
    WithJsonSchema,
)

from analytics.domain.facts import Status

# The read models hold money to the cent (analytics.adapters.queries.cents).
Money = Annotated[
    Decimal,
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^-?[0-9]+\.[0-9]{2}$",
            "description": "EUR, a decimal string.",
        }
    ),
]
Moment = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float | None, Field(description="Seconds; null when nothing was measured.")]
Rate = Annotated[float | None, Field(ge=0, le=1, description="A fraction; null without data.")]


def _example(example: JsonValue) -> ConfigDict:
    return ConfigDict(from_attributes=True, json_schema_extra={"examples": [example]})


class Overview(BaseModel):
    model_config = _example(
        {
            "orders": 120,
            "cancelled": 6,
            "revenue": "2961.46",
            "average_order_value": "25.98",
            "pizzas": 231,
            "customers": 87,
        }
    )

    orders: Count = Field(description="Orders placed in the window, cancelled ones included.")
    cancelled: Count
    revenue: Money = Field(description="Cancelled orders left out.")
    average_order_value: Money
    pizzas: Count = Field(description="Pizzas of the orders not cancelled.")
    customers: Count = Field(description="Distinct (pseudonymous) customers.")


class TimeBucket(BaseModel):
    model_config = _example(
        {"bucket": "2026-11-26T19:00:00+00:00", "orders": 14, "cancelled": 1, "revenue": "337.74"}
    )

    bucket: Moment = Field(description="Start of the hour or day (UTC).")
    orders: Count
    cancelled: Count
    revenue: Money


class StatusCounts(RootModel[dict[Status, Count]]):
    """Orders per status (only the statuses that occur)."""

    model_config = _example({"delivered": 80, "picked_up": 30, "cancelled": 6, "cooking": 4})


class ReasonCount(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: str | None
    orders: Count


class Cancellations(BaseModel):
    model_config = _example(
        {
            "cancelled": 6,
            "by_reason": [{"reason": "ordered twice", "orders": 4}],
            "by_previous_status": {"pending": 4, "confirmed": 2},
            "pizzas_wasted": 1,
        }
    )

    cancelled: Count
    by_reason: list[ReasonCount] = Field(description="Most frequent first.")
    by_previous_status: dict[str, Count] = Field(
        description="How many cancellations interrupted each status."
    )
    pizzas_wasted: Count = Field(description="Pizzas thrown away (cancelled while cooking).")


class PizzaSales(BaseModel):
    model_config = _example(
        {"pizza": "Margherita", "size": "large", "quantity": 42, "revenue": "682.08"}
    )

    pizza: str
    size: str
    quantity: Count
    revenue: Money


class PreparationBucket(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    bucket: Moment
    orders: Count
    average_seconds: Seconds
    p90_seconds: Seconds


class Preparation(BaseModel):
    model_config = _example(
        {
            "orders": 110,
            "average_seconds": 612.5,
            "p90_seconds": 840.0,
            "series": [
                {
                    "bucket": "2026-11-26T19:00:00+00:00",
                    "orders": 12,
                    "average_seconds": 598.25,
                    "p90_seconds": 801.3,
                }
            ],
        }
    )

    orders: Count = Field(description="Orders with both a start and a ready time.")
    average_seconds: Seconds
    p90_seconds: Seconds = Field(description="90th percentile, linearly interpolated.")
    series: list[PreparationBucket]


class OnTimeBucket(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    bucket: Moment
    measured: Count
    on_time: Count
    rate: Rate


class OnTime(BaseModel):
    model_config = _example(
        {
            "measured": 110,
            "on_time": 99,
            "rate": 0.9,
            "series": [
                {
                    "bucket": "2026-11-26T19:00:00+00:00",
                    "measured": 12,
                    "on_time": 11,
                    "rate": 0.9167,
                }
            ],
        }
    )

    measured: Count = Field(description="Orders ready with an estimate to compare against.")
    on_time: Count = Field(description="Ready no later than the kitchen's estimate.")
    rate: Rate
    series: list[OnTimeBucket]


class CookStats(BaseModel):
    model_config = _example(
        {
            "cook": "chef-mario",
            "started": 64,
            "ready": 63,
            "average_preparation_seconds": 605.1,
            "p90_preparation_seconds": 820.0,
            "on_time": 58,
            "on_time_rate": 0.9206,
            "pizzas_wasted": 1,
        }
    )

    cook: str
    started: Count
    ready: Count
    average_preparation_seconds: Seconds
    p90_preparation_seconds: Seconds
    on_time: Count
    on_time_rate: Rate
    pizzas_wasted: Count


class DriverStats(BaseModel):
    model_config = _example(
        {
            "driver_id": "driver-gino",
            "departures": 40,
            "deliveries": 39,
            "average_delivery_seconds": 1180.4,
            "longest_delivery_seconds": 2410.0,
        }
    )

    driver_id: str
    departures: Count
    deliveries: Count
    average_delivery_seconds: Seconds
    longest_delivery_seconds: Seconds


class HourOfDay(BaseModel):
    model_config = _example({"hour": 19, "orders": 31, "revenue": "805.38"})

    hour: int = Field(ge=0, le=23, description="Hour of the day (UTC).")
    orders: Count
    revenue: Money


class CustomerRevenue(BaseModel):
    model_config = _example(
        {"customer_id": "01a2173f-2a58-7c4e-8a0e-2b3c4d5e6f70", "orders": 5, "revenue": "129.90"}
    )

    customer_id: str = Field(description="Pseudonymous: never a name, phone or email.")
    orders: Count
    revenue: Money


class FactLine(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    pizza: str
    size: str
    quantity: Count
    toppings: list[str]
    unit_price: Money


class OrderFact(BaseModel):
    """What the events tell of one order; each field is filled by one kind of event, so any may
    still be null while that event has not been read."""

    model_config = _example(
        {
            "order_id": "01a2173f-2a59-7101-9f24-859a52435820",
            "status": "delivered",
            "customer_id": "01a2173f-2a58-7c4e-8a0e-2b3c4d5e6f70",
            "fulfilment": "delivery",
            "placed_at": "2026-11-26T19:30:00+00:00",
            "total": "25.98",
            "pizzas": 2,
            "confirmed_at": "2026-11-26T19:30:40+00:00",
            "confirmed_by": "customer",
            "cancelled_at": None,
            "cancel_reason": None,
            "cancelled_from": None,
            "cooking_started_at": "2026-11-26T19:33:00+00:00",
            "order_ready_at": "2026-11-26T19:43:00+00:00",
            "departed_at": "2026-11-26T19:45:00+00:00",
            "driver_id": "driver-gino",
            "delivered_at": "2026-11-26T20:02:00+00:00",
            "picked_up_at": None,
            "queued_at": "2026-11-26T19:30:41+00:00",
            "cook": "chef-mario",
            "kitchen_started_at": "2026-11-26T19:33:00+00:00",
            "kitchen_ready_at": "2026-11-26T19:43:00+00:00",
            "estimated_ready_at": "2026-11-26T19:44:00+00:00",
            "lateness_seconds": -60,
            "on_time": True,
            "withdrawn_at": None,
            "pizzas_wasted": None,
            "lines": [
                {
                    "pizza": "Margherita",
                    "size": "medium",
                    "quantity": 2,
                    "toppings": [],
                    "unit_price": "12.99",
                }
            ],
        }
    )

    order_id: str
    status: Status
    customer_id: str | None
    fulfilment: str | None
    placed_at: Moment | None
    total: Money | None
    pizzas: Count | None
    confirmed_at: Moment | None
    confirmed_by: str | None
    cancelled_at: Moment | None
    cancel_reason: str | None
    cancelled_from: str | None
    cooking_started_at: Moment | None
    order_ready_at: Moment | None
    departed_at: Moment | None
    driver_id: str | None
    delivered_at: Moment | None
    picked_up_at: Moment | None
    queued_at: Moment | None
    cook: str | None
    kitchen_started_at: Moment | None
    kitchen_ready_at: Moment | None
    estimated_ready_at: Moment | None
    lateness_seconds: int | None = Field(description="Positive: late; negative: early.")
    on_time: bool | None
    withdrawn_at: Moment | None
    pizzas_wasted: Count | None
    lines: list[FactLine]
