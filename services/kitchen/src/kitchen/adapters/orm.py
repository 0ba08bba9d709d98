"""Tables of the kitchen database (the eventing tables come from ``eventing.database``).

Keep in step with the migrations, which spell the DDL out and never import this module.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

tickets_table = Table(
    "tickets",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("pizzas", Integer, nullable=False),
    # [{"pizza", "size", "quantity", "toppings"}]: what to cook, no prices.
    Column("lines", JSONB, nullable=False),
    Column("status", Text, nullable=False, index=True),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("fulfilment", Text, nullable=False, server_default="delivery"),
    Column("started_at", DateTime(timezone=True)),
    Column("ready_at", DateTime(timezone=True)),
    Column("cook", Text),
    Column("estimated_ready_at", DateTime(timezone=True)),
    Column("lateness_seconds", Integer),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    Column("pizzas_wasted", Integer, nullable=False, server_default=text("0")),
)

# One row. Every change of the kitchen locks it first (so capacity checks and re-estimates never
# race), and it holds the kitchen's clock: the latest moment a change was made at (event time for
# consumed events, wall-clock time for cooks' actions). It never goes back.
kitchen_clock_table = Table(
    "kitchen_clock",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("now", DateTime(timezone=True)),
    CheckConstraint("id = 1", name="kitchen_clock_one_row"),
)
