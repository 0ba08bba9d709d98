"""The analytics database: one fact row per order and one row per order line.

Every column of ``order_facts`` is filled by exactly one kind of event (noted beside it), so an
order's row ends up the same whatever order its events arrive in; ``status`` is derived from the
milestones by ``analytics.domain.facts.derive_status``. Aggregates are SQL queries over these two
tables (``analytics.adapters.queries``). The tables carry no schema: the rebuild writes the same
tables into a scratch schema through ``schema_translate_map``. Keep in step with migration 0002.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()

Timestamp = DateTime(timezone=True)
Money = Numeric(10, 2)

order_facts_table = Table(
    "order_facts",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("status", Text, nullable=False),  # derived from the milestones below
    Column("customer_id", Text),  # OrderPlaced (pseudonymous)
    Column("fulfilment", Text),  # OrderPlaced
    Column("placed_at", Timestamp),  # OrderPlaced: the time every aggregate filters on
    Column("total", Money),  # OrderPlaced
    Column("pizzas", Integer),  # OrderPlaced (sum of quantities)
    Column("confirmed_at", Timestamp),  # OrderConfirmed
    Column("confirmed_by", Text),  # OrderConfirmed
    Column("cancelled_at", Timestamp),  # OrderCancelled
    Column("cancel_reason", Text),  # OrderCancelled
    Column("cancelled_from", Text),  # OrderCancelled.previous_status
    Column("cooking_started_at", Timestamp),  # OrderCookingStarted
    Column("order_ready_at", Timestamp),  # OrderReady
    Column("departed_at", Timestamp),  # OrderDeparted
    Column("driver_id", Text),  # OrderDeparted
    Column("delivered_at", Timestamp),  # OrderDelivered
    Column("picked_up_at", Timestamp),  # OrderPickedUp
    Column("queued_at", Timestamp),  # TicketQueued
    Column("cook", Text),  # KitchenCookingStarted
    Column("kitchen_started_at", Timestamp),  # KitchenCookingStarted
    Column("kitchen_ready_at", Timestamp),  # KitchenOrderReady
    Column("estimated_ready_at", Timestamp),  # KitchenOrderReady
    Column("lateness_seconds", Integer),  # KitchenOrderReady
    Column("on_time", Boolean),  # KitchenOrderReady (is_on_time)
    Column("withdrawn_at", Timestamp),  # TicketWithdrawn
    Column("pizzas_wasted", Integer),  # TicketWithdrawn
    Index("ix_order_facts_placed_at", "placed_at"),
    Index("ix_order_facts_customer_id", "customer_id"),
)

order_lines_table = Table(
    "order_lines",
    metadata,
    Column(
        "order_id",
        Text,
        ForeignKey("order_facts.order_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("line_no", Integer, primary_key=True),  # position in OrderPlaced.lines
    Column("pizza", Text, nullable=False),
    Column("size", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("toppings", ARRAY(Text), nullable=False),
    Column("unit_price", Money, nullable=False),
)
