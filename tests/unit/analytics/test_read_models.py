"""The analytics read models and how the API writes them: the JSON of every answer is what it was
when the queries returned JSON-ready dictionaries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from analytics.adapters.orm import order_facts_table
from analytics.adapters.queries import (
    FactLineRow,
    OrderFactRow,
    OverviewRow,
    TimeBucketRow,
    cents,
    utc,
)
from analytics.bootstrap import projections
from analytics.domain.facts import Status
from analytics.entrypoints.schemas import OrderFact, Overview, StatusCounts, TimeBucket
from analytics.service_layer.events import EVENT_HANDLERS

PLACED = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)


def test_money_is_written_to_the_cent_and_nothing_sold_is_zero() -> None:
    row = OverviewRow(
        orders=3,
        cancelled=1,
        revenue=cents(Decimal("51.9")),
        average_order_value=cents(Decimal("51.9") / 2),
        pizzas=4,
        customers=2,
    )
    assert Overview.model_validate(row).model_dump(mode="json") == {
        "orders": 3,
        "cancelled": 1,
        "revenue": "51.90",
        "average_order_value": "25.95",
        "pizzas": 4,
        "customers": 2,
    }
    assert str(cents(None)) == str(cents(Decimal(0))) == "0.00"


def test_a_bucket_is_the_start_of_its_hour_in_utc_with_its_offset() -> None:
    # date_trunc over the UTC wall time gives the bucket without a zone.
    row = TimeBucketRow(
        bucket=utc(datetime(2026, 11, 26, 19)), orders=2, cancelled=0, revenue=cents(None)
    )
    assert TimeBucket.model_validate(row).model_dump(mode="json") == {
        "bucket": "2026-11-26T19:00:00+00:00",
        "orders": 2,
        "cancelled": 0,
        "revenue": "0.00",
    }


def test_statuses_are_written_by_their_names() -> None:
    counts = StatusCounts({Status.DELIVERED: 2, Status.OUT_FOR_DELIVERY: 1})
    assert counts.model_dump(mode="json") == {"delivered": 2, "out_for_delivery": 1}


def test_an_order_fact_has_every_column_of_order_facts_and_its_lines() -> None:
    columns = [column.name for column in order_facts_table.columns]
    assert [field.name for field in dataclasses.fields(OrderFactRow)] == [*columns, "lines"]
    assert set(OrderFact.model_fields) == {*columns, "lines"}


def test_an_order_fact_keeps_what_no_event_has_filled_yet_as_null() -> None:
    values: dict[str, Any] = {column.name: None for column in order_facts_table.columns}
    values.update(order_id="o-1", status=Status.PENDING, placed_at=PLACED, total=cents(Decimal(26)))
    line = FactLineRow(
        pizza="Margherita",
        size="medium",
        quantity=2,
        toppings=[],
        unit_price=cents(Decimal("12.99")),
    )
    written = OrderFact.model_validate(OrderFactRow(**values, lines=[line])).model_dump(mode="json")
    assert written["placed_at"] == "2026-11-26T19:30:00+00:00"
    assert (written["status"], written["total"], written["departed_at"]) == (
        "pending",
        "26.00",
        None,
    )
    assert written["lines"] == [
        {
            "pizza": "Margherita",
            "size": "medium",
            "quantity": 2,
            "toppings": [],
            "unit_price": "12.99",
        }
    ]


def test_the_inbox_keys_of_the_projections_never_change() -> None:
    # Renaming one would re-apply every event of its type already applied.
    assert [handler.name for handler in EVENT_HANDLERS] == [
        "analytics.order_placed",
        "analytics.order_confirmed",
        "analytics.order_cancelled",
        "analytics.order_cooking",
        "analytics.order_ready",
        "analytics.order_departed",
        "analytics.order_delivered",
        "analytics.order_picked_up",
        "analytics.ticket_queued",
        "analytics.kitchen_cooking",
        "analytics.kitchen_ready",
        "analytics.ticket_withdrawn",
    ]
    assert [(s.name, s.event) for s in projections()] == [
        (handler.name, handler.event) for handler in EVENT_HANDLERS
    ]
